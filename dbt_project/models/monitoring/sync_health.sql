-- When each shop and table was last synced, by which door, and whether the last attempt failed.
-- One row per (shop, table) the connector has ever synced, from the sync log every door writes.
-- A warehouse loaded before the log existed (or by dlt directly) has no log: no rows, no failure.
{%- set sync_log = source('autosync_meta', '_autosync_runs') %}
with runs as (
    {%- if execute and var('check_source_tables', true) and load_relation(sync_log) is none %}
    select
        cast(null as {{ dbt.type_string() }}) as run_id,
        cast(null as {{ dbt.type_string() }}) as door,
        cast(null as {{ dbt.type_bigint() }}) as shop_id,
        cast(null as {{ dbt.type_string() }}) as resource,
        cast(null as {{ dbt.type_string() }}) as status,
        cast(null as {{ dbt.type_timestamp() }}) as finished_at,
        cast(null as {{ dbt.type_string() }}) as error,
        cast(null as {{ dbt.type_bigint() }}) as rows_loaded,
        cast(null as {{ dbt.type_string() }}) as cursor_updated_at
    where 1 = 0
    {%- else %}
    select
        run_id,
        door,
        shop_id,
        resource,
        status,
        finished_at,
        error,
        rows_loaded,
        cursor_updated_at
    from {{ sync_log }}
    {%- endif %}
),

ranked as (
    select
        shop_id,
        resource,
        door,
        status,
        finished_at,
        error,
        rows_loaded,
        cursor_updated_at,
        row_number() over (partition by shop_id, resource order by finished_at desc, run_id desc) as recency
    from runs
),

last_success as (
    select shop_id, resource, max(finished_at) as last_success_at
    from runs
    where status = 'ok'
    group by shop_id, resource
),

failures_since_success as (
    select runs.shop_id, runs.resource, count(*) as failures
    from runs
    left join last_success
        on runs.shop_id = last_success.shop_id and runs.resource = last_success.resource
    where runs.status <> 'ok'
        and (last_success.last_success_at is null or runs.finished_at > last_success.last_success_at)
    group by runs.shop_id, runs.resource
)

select
    ranked.shop_id,
    ranked.resource as table_name,
    ranked.finished_at as last_attempt_at,
    ranked.status as last_status,
    ranked.door as last_door,
    ranked.error as last_error,
    ranked.rows_loaded as last_rows_loaded,
    ranked.cursor_updated_at as cursor_position,
    last_success.last_success_at,
    coalesce(failures_since_success.failures, 0) as failures_since_success,
    {{ dbt.datediff('last_success.last_success_at', dbt.current_timestamp(), 'hour') }} as hours_since_success -- noqa: LT05
from ranked
left join last_success
    on ranked.shop_id = last_success.shop_id and ranked.resource = last_success.resource
left join failures_since_success
    on ranked.shop_id = failures_since_success.shop_id and ranked.resource = failures_since_success.resource
where ranked.recency = 1
