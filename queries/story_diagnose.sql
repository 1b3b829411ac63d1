-- Story "third-party timeout": network, server or client? The evidence on
-- one server's flows and calls and the verdict, by the rule of
-- `flowtrail diagnose DIR --server IP[:PORT]` (analyzer/src/query/diagnose.rs):
--   network: retransmissions >= 1% of a direction's packets (each direction
--            one item); a SYN never answered; RTT jitter (>= 3 flows,
--            p90-p10 of rtt_server_ns >= 20 ms and >= the median);
--   server:  refused; server_rst; server zero window; slow after ACK (median
--            first byte >= 100 ms and >= 10 x median RTT); server_error calls;
--            timeouts when the network shows no evidence;
--   client:  client_rst; client zero window.
-- The verdict is the side with most items (ties: network, server, client),
-- `none` without evidence. Percentiles are percentile_disc (nearest rank).
-- Runs unchanged on DuckDB and Spark SQL over the views `flows` and `calls`
-- (see story_404.sql).
-- Parameters (edit the values in `params`): the server's address, and its
-- port (null for any).
with params as (
  select cast('10.99.7.20' as string) as server_ip,
         cast(null as int) as server_port
),
f as (
  select f.* from flows f cross join params p
  where f.server_ip = p.server_ip and (p.server_port is null or f.server_port = p.server_port)
),
c as (
  select c.* from calls c cross join params p
  where c.server_ip = p.server_ip and (p.server_port is null or c.server_port = p.server_port)
),
agg as (
  select count(distinct flow_id) as flows,
         count(*) as records,
         coalesce(sum(client_packets), 0) as client_packets,
         coalesce(sum(server_packets), 0) as server_packets,
         coalesce(sum(client_retransmissions), 0) as client_retransmissions,
         coalesce(sum(server_retransmissions), 0) as server_retransmissions,
         coalesce(sum(client_zero_window), 0) as client_zero_window,
         coalesce(sum(server_zero_window), 0) as server_zero_window,
         coalesce(sum(case when record_kind = 'final' and close_type = 'refused' then 1 else 0 end), 0) as refused,
         coalesce(sum(case when record_kind = 'final' and close_type = 'no_synack' then 1 else 0 end), 0) as no_synack,
         coalesce(sum(case when record_kind = 'final' and close_type = 'client_rst' then 1 else 0 end), 0) as client_rst,
         coalesce(sum(case when record_kind = 'final' and close_type = 'server_rst' then 1 else 0 end), 0) as server_rst
  from f
),
rtt as (
  select count(*) as rtt_flows,
         cast(percentile_disc(0.1) within group (order by rtt_server_ns) as bigint) as rtt_p10_ns,
         cast(percentile_disc(0.5) within group (order by rtt_server_ns) as bigint) as rtt_p50_ns,
         cast(percentile_disc(0.9) within group (order by rtt_server_ns) as bigint) as rtt_p90_ns
  from f
  where rtt_server_ns is not null and start_ns = flow_start_ns
),
cl as (
  select count(*) as calls,
         coalesce(sum(case when response_status = 'timeout' then 1 else 0 end), 0) as timeouts,
         coalesce(sum(case when response_status = 'server_error' then 1 else 0 end), 0) as server_errors
  from c
),
fb as (
  select cast(percentile_disc(0.5) within group (order by first_byte_ns) as bigint) as first_byte_p50_ns,
         cast(percentile_disc(0.9) within group (order by first_byte_ns) as bigint) as first_byte_p90_ns
  from c
  where first_byte_ns is not null
),
n as (
  select agg.*, rtt.*, cl.*, fb.*,
         (case when client_retransmissions > 0 and client_retransmissions * 100 >= client_packets then 1 else 0 end)
         + (case when server_retransmissions > 0 and server_retransmissions * 100 >= server_packets then 1 else 0 end)
         + (case when no_synack > 0 then 1 else 0 end)
         + (case when rtt_flows >= 3 and rtt_p90_ns - rtt_p10_ns >= 20000000
                  and rtt_p90_ns - rtt_p10_ns >= rtt_p50_ns then 1 else 0 end) as network_evidence
  from agg cross join rtt cross join cl cross join fb
),
e as (
  select n.*,
         (case when refused > 0 then 1 else 0 end)
         + (case when server_rst > 0 then 1 else 0 end)
         + (case when server_zero_window > 0 then 1 else 0 end)
         + (case when first_byte_p50_ns >= 100000000
                  and (rtt_p50_ns is null or first_byte_p50_ns >= 10 * rtt_p50_ns) then 1 else 0 end)
         + (case when server_errors > 0 then 1 else 0 end)
         + (case when timeouts > 0 and network_evidence = 0 then 1 else 0 end) as server_evidence,
         (case when client_rst > 0 then 1 else 0 end)
         + (case when client_zero_window > 0 then 1 else 0 end) as client_evidence
  from n
)
select p.server_ip, p.server_port,
       case when network_evidence + server_evidence + client_evidence = 0 then 'none'
            when network_evidence >= server_evidence and network_evidence >= client_evidence then 'network'
            when server_evidence >= client_evidence then 'server'
            else 'client' end as verdict,
       flows, records, client_packets, server_packets, client_retransmissions, server_retransmissions,
       client_zero_window, server_zero_window, refused, no_synack, client_rst, server_rst,
       rtt_flows, rtt_p10_ns, rtt_p50_ns, rtt_p90_ns, calls, timeouts, server_errors,
       first_byte_p50_ns, first_byte_p90_ns, network_evidence, server_evidence, client_evidence
from e cross join params p
order by p.server_ip
