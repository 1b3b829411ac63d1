-- L4 NAT paths in plain SQL: the same TCP connection seen at two capture
-- points (or before and after a DNAT/SNAT at one), joined on the client's
-- initial sequence number, as `flowtrail correlate` does for its `tcp_isn`
-- links. Runs unchanged on DuckDB and Spark SQL over the `flows` dataset:
--   DuckDB: create view flows as select * from read_parquet('DIR/flows/**/*.parquet', hive_partitioning=true);
--   Spark:  spark.read.parquet('DIR/flows').createOrReplaceTempView('flows')
-- Parameters (edit the values in `params`):
--   window_ns: largest gap between two sightings of one SYN, clock skew included.
with params as (
  select cast(5005000000 as bigint) as window_ns
),
f as (
  -- The first record of each flow carries its SYN's keys.
  select flow_id, capture_point, flow_start_ns as start_ns,
         client_ip, client_port, server_ip, server_port,
         client_isn, server_isn, syn_ip_id, syn_tsval
  from flows
  where l4_protocol = 'tcp' and client_isn is not null and start_ns = flow_start_ns
),
pairs as (
  select a.flow_id as a_flow_id, b.flow_id as b_flow_id,
         a.capture_point as a_capture_point, b.capture_point as b_capture_point,
         a.client_ip as a_client_ip, a.client_port as a_client_port,
         a.server_ip as a_server_ip, a.server_port as a_server_port,
         b.client_ip as b_client_ip, b.client_port as b_client_port,
         b.server_ip as b_server_ip, b.server_port as b_server_port,
         a.start_ns as a_start_ns, b.start_ns as b_start_ns,
         b.start_ns - a.start_ns as hop_latency_ns,
         -- each sighting links to the nearest earlier one (a chain across points)
         row_number() over (partition by b.flow_id order by a.start_ns desc, a.flow_id desc) as nearest
  from f a
  join f b on a.client_isn = b.client_isn
  cross join params p
  where (a.start_ns < b.start_ns or (a.start_ns = b.start_ns and a.flow_id < b.flow_id))
    and b.start_ns - a.start_ns <= p.window_ns
    and (a.capture_point <> b.capture_point or a.client_ip <> b.client_ip or a.client_port <> b.client_port
         or a.server_ip <> b.server_ip or a.server_port <> b.server_port)
    -- keys both sides carry must agree: a rewritten sequence space never links
    and (a.server_isn is null or b.server_isn is null or a.server_isn = b.server_isn)
    and (a.syn_tsval is null or b.syn_tsval is null or a.syn_tsval = b.syn_tsval)
    and (a.server_isn = b.server_isn or a.syn_ip_id is null or b.syn_ip_id is null or a.syn_ip_id = b.syn_ip_id)
)
select a_flow_id, b_flow_id, a_capture_point, b_capture_point,
       a_client_ip, a_client_port, a_server_ip, a_server_port,
       b_client_ip, b_client_port, b_server_ip, b_server_port,
       case
         when (a_client_ip <> b_client_ip or a_client_port <> b_client_port)
          and (a_server_ip <> b_server_ip or a_server_port <> b_server_port) then 'dnat+snat'
         when a_server_ip <> b_server_ip or a_server_port <> b_server_port then 'dnat'
         when a_client_ip <> b_client_ip or a_client_port <> b_client_port then 'snat'
         else 'none'
       end as translation,
       hop_latency_ns
from pairs
where nearest = 1
order by a_start_ns, b_start_ns
