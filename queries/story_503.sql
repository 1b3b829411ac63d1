-- Story "intermittent 503": per server and time window, the calls, those
-- with the status asked for, and their share, so one sees when and where
-- errors cluster; what `flowtrail calls DIR --status server_error --by server
-- --window 1m` prints. Windows are aligned to the epoch; windows without a
-- matching call are left out. (IPv6 servers print without brackets here.)
-- Runs unchanged on DuckDB and Spark SQL over the view `calls` (see story_404.sql).
-- Parameters (edit the values in `params`):
--   status_class: a response_status (ok, client_error, server_error, timeout),
--     or null; status_code: a response code (503), or null; both given: both hold.
--   window_ns: the window length.
with params as (
  select cast('server_error' as string) as status_class,
         cast(null as int) as status_code,
         cast(60000000000 as bigint) as window_ns
),
w as (
  select c.start_ns - (c.start_ns % p.window_ns) as window_start_ns,
         concat(c.server_ip, ':', cast(c.server_port as string)) as server,
         case when (p.status_class is null or c.response_status = p.status_class)
                and (p.status_code is null or c.response_code = p.status_code) then 1 else 0 end as m
  from calls c cross join params p
)
select window_start_ns, server,
       count(*) as calls,
       sum(m) as matched,
       round(sum(m) / count(*), 4) as rate
from w
group by window_start_ns, server
having sum(m) > 0
order by window_start_ns, matched desc, server
