-- Story "404 on the front end": the calls that answered a status for a
-- resource at one capture point, newest first, each with the server at the
-- other end of its NAT path (the backend that really answered), as
-- `flowtrail calls DIR --status 404 --resource /api/v2 --point client` prints
-- them. A request link (`l7`, a proxy) is joined by call id, else a
-- connection link (`l4`, DNAT/SNAT) by flow id; one hop (chains through
-- several proxies: `flowtrail path`).
-- Runs unchanged on DuckDB and Spark SQL over views `calls` and `nat_paths`:
--   DuckDB: create view calls as select * from read_parquet('DIR/calls/**/*.parquet', hive_partitioning=true);
--   Spark:  spark.read.parquet('DIR/calls').createOrReplaceTempView('calls')
-- Parameters (edit the values in `params`):
--   status_code: the response code; resource_part: text the resource contains;
--   point: the capture point (null for all).
with params as (
  select cast(404 as int) as status_code,
         cast('/api/v2' as string) as resource_part,
         cast('client' as string) as point
),
c as (
  select c.start_ns, c.capture_point, c.client_ip, c.client_port, c.server_ip, c.server_port,
         c.request_resource, c.response_code, c.latency_ns, c.flow_id, c.call_id
  from calls c cross join params p
  where c.response_code = p.status_code
    and c.request_resource like concat('%', p.resource_part, '%')
    and (p.point is null or c.capture_point = p.point)
),
l7 as (
  select a_call_id, b_capture_point, b_server_ip, b_server_port from nat_paths where link_kind = 'l7'
),
l4 as (
  select a_flow_id, b_capture_point, b_server_ip, b_server_port from nat_paths where link_kind = 'l4'
)
select c.start_ns, c.capture_point, c.client_ip, c.client_port, c.server_ip, c.server_port,
       c.request_resource, c.response_code, c.latency_ns, c.call_id,
       coalesce(l7.b_capture_point, l4.b_capture_point) as path_point,
       coalesce(l7.b_server_ip, l4.b_server_ip) as path_server_ip,
       coalesce(l7.b_server_port, l4.b_server_port) as path_server_port
from c
left join l7 on l7.a_call_id = c.call_id
left join l4 on l4.a_flow_id = c.flow_id
order by c.start_ns desc, c.call_id
