/** Tables shared by several pages: command history, alert lists. */
import type { JSX } from 'preact';
import { formatted, lookupOf, query, type Row } from '../api';
import { useAsync, useRecordChanges } from '../hooks';
import { href } from '../router';
import { DataTable, Loaded } from './list';
import { Badge, formatTime } from './ui';

export const COMMAND_STATUS = { InProgress: 192350000, Sent: 192350001, Error: 192350002, Delivered: 192350003, Expired: 192350004 } as const;

export function commandStatusBadge(row: Row): JSX.Element {
  const v = row['msdyn_commandstatus'];
  const label = formatted(row, 'msdyn_commandstatus') || 'In Progress';
  const tone = v === COMMAND_STATUS.Delivered ? 'ok' : v === COMMAND_STATUS.Error ? 'bad' : v === COMMAND_STATUS.Expired ? 'warn' : v === COMMAND_STATUS.Sent ? 'info' : 'muted';
  return <Badge tone={tone}>{label}</Badge>;
}

/** Commands matching `filter`, newest first, live: a status change shows up without a reload. */
export function CommandHistory(props: { filter: string; label: string; showDevice?: boolean; testId?: string }): JSX.Element {
  const list = useAsync(
    (signal) =>
      query(
        `msdyn_iotdevicecommands?$select=msdyn_name,msdyn_message,msdyn_commandstatus,msdyn_commandstatusreason,createdon,_msdyn_device_value,_msdyn_parentalert_value,ccs_responsestatus,ccs_responsepayload&$filter=${encodeURIComponent(props.filter)}&$orderby=createdon desc&$top=50`,
        { signal },
      ),
    [props.filter],
  );
  useRecordChanges(['msdyn_iotdevicecommand'], () => list.reload(), 300);
  return (
    <Loaded state={list} what="commands" empty="No commands sent yet.">
      {(data) => (
        <DataTable caption={props.label} testId={props.testId} columns={['Sent', 'Command', props.showDevice && 'Device', 'Message', 'Status']}>
          {data.value.map((c) => {
            const device = lookupOf(c, 'msdyn_device');
            return (
              <tr key={String(c['msdyn_iotdevicecommandid'])} data-command-id={String(c['msdyn_iotdevicecommandid'])}>
                <td>{formatTime(c['createdon'])}</td>
                <td>{String(c['msdyn_name'] ?? '')}</td>
                {props.showDevice && <td>{device ? <a href={href(`devices/${device.id}`)}>{device.name}</a> : '—'}</td>}
                <td>
                  <code class="clip">{String(c['msdyn_message'] ?? '')}</code>
                </td>
                <td class="command-status">
                  {commandStatusBadge(c)}
                  {c['msdyn_commandstatusreason'] ? <div class="muted small">{String(c['msdyn_commandstatusreason'])}</div> : null}
                  {c['ccs_responsestatus'] !== null && c['ccs_responsestatus'] !== undefined ? (
                    <div class="small">
                      Device answered {String(c['ccs_responsestatus'])}
                      {c['ccs_responsepayload'] ? (
                        <>
                          : <code class="clip">{String(c['ccs_responsepayload'])}</code>
                        </>
                      ) : null}
                    </div>
                  ) : null}
                </td>
              </tr>
            );
          })}
        </DataTable>
      )}
    </Loaded>
  );
}

/** A compact alert table for a filter (a device's alerts, a case's alerts, child alerts). */
export function AlertTable(props: { filter: string; label: string; empty: string; top?: number }): JSX.Element {
  const list = useAsync(
    (signal) =>
      query(
        `msdyn_iotalerts?$select=msdyn_description,msdyn_alerttime,msdyn_alerttype,_msdyn_device_value,statecode&$filter=${encodeURIComponent(props.filter)}&$orderby=msdyn_alerttime desc&$top=${props.top ?? 50}&$count=true`,
        { signal },
      ),
    [props.filter],
  );
  useRecordChanges(['msdyn_iotalert'], () => list.reload(), 700);
  return (
    <Loaded state={list} what="alerts" empty={props.empty}>
      {(data) => (
        <DataTable
          caption={props.label}
          columns={['Alert', 'Time', 'Type', 'State']}
          footer={
            data.count !== undefined &&
            data.count > data.value.length && (
              <p class="muted">
                Showing the latest {data.value.length} of {data.count.toLocaleString()}.
              </p>
            )
          }
        >
          {data.value.map((a) => (
            <tr key={String(a['msdyn_iotalertid'])}>
              <td>
                <a href={href(`alerts/${String(a['msdyn_iotalertid'])}`)}>{String(a['msdyn_description'] ?? '(no description)')}</a>
              </td>
              <td>{formatTime(a['msdyn_alerttime'])}</td>
              <td>{formatted(a, 'msdyn_alerttype')}</td>
              <td>{a['statecode'] === 0 ? <Badge tone="warn">Active</Badge> : <Badge>Inactive</Badge>}</td>
            </tr>
          ))}
        </DataTable>
      )}
    </Loaded>
  );
}
