import type { ThermostatCommand } from './commands.js';

/**
 * One simulated thermostat's state: a random walk of Temperature and Humidity around set points, with occasional
 * heat excursions above 70 so that a rule like Microsoft's sample ("Temperature > 70", reference
 * ms-connected-service.md §1.2) fires now and then. Pure and driven by the random source it is given, so tests can
 * make it deterministic.
 */

/** Microsoft's simulator is "preprogrammed to raise an alert above 70°" (CFS-SETUP); readings hover below that. */
export const DEFAULT_SET_POINT = { Temperature: 65, Humidity: 45 } as const;
export const FIRMWARE_VERSION = '1.0.0';

export interface Reading {
  readonly Temperature: number;
  readonly Humidity: number;
}

export interface ThermostatOptions {
  /** Uniform in [0, 1). */
  readonly random?: () => number;
  /** Chance per reading that a heat excursion (readings above 70) starts. */
  readonly excursionChance?: number;
}

/** What the device reports in its twin (`properties.reported`). */
export interface ReportedState {
  readonly firmware: string;
  readonly model: string;
  readonly setPoint: Reading;
  readonly resets: number;
  readonly lastCommand: { readonly name: string; readonly at: string } | null;
  readonly lastNotification: { readonly message: string; readonly at: string } | null;
}

export class Thermostat {
  #temperature: number;
  #humidity: number;
  #setPoint: { Temperature: number; Humidity: number } = { ...DEFAULT_SET_POINT };
  /** Readings left in the current heat excursion, and how far above the set point it pushes. */
  #excursionLeft = 0;
  #excursionHeat = 0;
  #resets = 0;
  #lastCommand: ReportedState['lastCommand'] = null;
  #lastNotification: ReportedState['lastNotification'] = null;
  readonly #random: () => number;
  readonly #excursionChance: number;

  constructor(opts: ThermostatOptions = {}) {
    this.#random = opts.random ?? Math.random;
    this.#excursionChance = opts.excursionChance ?? 0.02;
    this.#temperature = DEFAULT_SET_POINT.Temperature + (this.#random() - 0.5) * 4;
    this.#humidity = DEFAULT_SET_POINT.Humidity + (this.#random() - 0.5) * 10;
  }

  /** Roughly normal noise (sum of uniforms), standard deviation about `sd`. */
  #noise(sd: number): number {
    return (this.#random() + this.#random() + this.#random() - 1.5) * 2 * sd;
  }

  /** The next reading: each value drifts back toward its set point with some noise. */
  next(): Reading {
    if (this.#excursionLeft === 0 && this.#random() < this.#excursionChance) {
      this.#excursionLeft = 3 + Math.floor(this.#random() * 8);
      this.#excursionHeat = 8 + this.#random() * 10;
    }
    let target = this.#setPoint.Temperature;
    if (this.#excursionLeft > 0) {
      this.#excursionLeft--;
      target += this.#excursionHeat;
    }
    // Excursions move fast (a fault), recovery is slower.
    const pull = this.#excursionLeft > 0 ? 0.6 : 0.2;
    this.#temperature += (target - this.#temperature) * pull + this.#noise(0.3);
    this.#humidity += (this.#setPoint.Humidity - this.#humidity) * 0.1 + this.#noise(0.8);
    this.#humidity = Math.min(100, Math.max(0, this.#humidity));
    return { Temperature: round(this.#temperature), Humidity: round(this.#humidity) };
  }

  /** Applies a command; returns a short description for the method response. */
  apply(command: ThermostatCommand, now: Date): string {
    this.#lastCommand = { name: command.name, at: now.toISOString() };
    switch (command.name) {
      case 'Reset Thermostat':
        // Back to factory set points, and whatever fault was heating it is gone.
        this.#setPoint = { ...DEFAULT_SET_POINT };
        this.#temperature = DEFAULT_SET_POINT.Temperature;
        this.#humidity = DEFAULT_SET_POINT.Humidity;
        this.#excursionLeft = 0;
        this.#resets++;
        return 'Thermostat reset';
      case 'Notification':
        this.#lastNotification = { message: command.message, at: now.toISOString() };
        return `Notification shown: ${command.message}`;
      case 'Set Values':
        // The readings jump to the values given and then hover around them.
        if (command.temperature !== undefined) this.#setPoint.Temperature = this.#temperature = command.temperature;
        if (command.humidity !== undefined) this.#setPoint.Humidity = this.#humidity = command.humidity;
        this.#excursionLeft = 0;
        return `Values set: Temperature ${this.#setPoint.Temperature}, Humidity ${this.#setPoint.Humidity}`;
    }
  }

  get reported(): ReportedState {
    return {
      firmware: FIRMWARE_VERSION,
      model: 'ccs simulated thermostat',
      setPoint: { ...this.#setPoint },
      resets: this.#resets,
      lastCommand: this.#lastCommand,
      lastNotification: this.#lastNotification,
    };
  }
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
