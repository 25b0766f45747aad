/**
 * Watches the MQTT packet framing of an inbound byte stream and reports a packet whose Remaining Length is over a
 * limit as soon as its fixed header arrives, before the parser buffers the whole packet: a client announcing a
 * 200 MB PUBLISH is dropped after a few bytes instead of after 200 MB of memory. It only counts bytes; the parser
 * (mqtt-packet, inside aedes) still does the real decoding.
 *
 * MQTT 3.1.1 §2.2: a packet is one byte of type and flags, then the Remaining Length in 1 to 4 bytes of 7 bits each,
 * least significant first, the high bit meaning "more bytes follow" (§2.2.3), then that many bytes.
 */
export type FrameVerdict = 'ok' | 'tooLarge' | 'malformed';

export interface FrameGuard {
  /** Feeds the next chunk as it comes off the connection; once a verdict is not 'ok' it stays so. */
  feed(chunk: Buffer): FrameVerdict;
}

const HEADER = 0;
const LENGTH = 1;
const BODY = 2;

export function createFrameGuard(maxRemainingLength: number): FrameGuard {
  let phase: number = HEADER;
  let value = 0;
  let multiplier = 1;
  let lengthBytes = 0;
  let toSkip = 0;
  let verdict: FrameVerdict = 'ok';

  return {
    feed(chunk) {
      let i = 0;
      const n = chunk.length;
      while (verdict === 'ok' && i < n) {
        switch (phase) {
          case HEADER:
            i++;
            phase = LENGTH;
            value = 0;
            multiplier = 1;
            lengthBytes = 0;
            break;
          case LENGTH: {
            const b = chunk[i++]!;
            value += (b & 0x7f) * multiplier;
            multiplier *= 128;
            lengthBytes++;
            if (b & 0x80) {
              // §2.2.3: at most four bytes; a fifth continuation is a malformed packet.
              if (lengthBytes === 4) verdict = 'malformed';
            } else if (value > maxRemainingLength) {
              verdict = 'tooLarge';
            } else {
              toSkip = value;
              phase = value === 0 ? HEADER : BODY;
            }
            break;
          }
          case BODY: {
            const take = Math.min(toSkip, n - i);
            i += take;
            toSkip -= take;
            if (toSkip === 0) phase = HEADER;
            break;
          }
        }
      }
      return verdict;
    },
  };
}
