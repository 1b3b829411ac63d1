-- Story "surge after a release": the resources with the most calls in the
-- AFTER range, with their calls in the BEFORE range and the rate change;
-- what `flowtrail top DIR --by resource --compare BEFORE,AFTER` prints
-- (ranked by calls after, then before, then resource).
-- Runs unchanged on DuckDB and Spark SQL over the view `calls` (see story_404.sql).
-- Parameters (edit the values in `params`): the two ranges [since, until)
-- in Unix nanoseconds, and how many rows.
with params as (
  select cast(1795592489000000000 as bigint) as before_since,
         cast(1795592489800000000 as bigint) as before_until,
         cast(1795592489800000000 as bigint) as after_since,
         cast(1795592491000000000 as bigint) as after_until,
         cast(10 as int) as top_n
),
k as (
  select c.request_resource,
         sum(case when c.start_ns >= p.before_since and c.start_ns < p.before_until then 1 else 0 end) as calls_before,
         sum(case when c.start_ns >= p.after_since and c.start_ns < p.after_until then 1 else 0 end) as calls_after
  from calls c cross join params p
  where c.request_resource is not null
    and ((c.start_ns >= p.before_since and c.start_ns < p.before_until)
      or (c.start_ns >= p.after_since and c.start_ns < p.after_until))
  group by c.request_resource
),
r as (
  select k.request_resource, k.calls_before, k.calls_after,
         row_number() over (order by k.calls_after desc, k.calls_before desc, k.request_resource) as rank
  from k
)
select r.rank, r.request_resource, r.calls_before, r.calls_after,
       cast(round(r.calls_before * 60000000000.0 / (p.before_until - p.before_since), 4) as double) as before_per_min,
       cast(round(r.calls_after * 60000000000.0 / (p.after_until - p.after_since), 4) as double) as after_per_min,
       case when r.calls_before > 0
            then cast(round((r.calls_after * 1.0 / (p.after_until - p.after_since))
                            / (r.calls_before * 1.0 / (p.before_until - p.before_since)) - 1, 4) as double) end as change
from r cross join params p
where r.rank <= p.top_n
order by r.rank
