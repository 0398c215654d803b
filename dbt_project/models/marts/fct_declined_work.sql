{#- Grain: one row per declined piece of work, each once. A declined job is a row (source = 'job');
    a declined inspection item is the same work as the declined job its job_id names (that job's
    row carries it in inspection_item_id), a row of its own (source = 'inspection_item') when it
    names no job or a pending one, and no row when its job was sold after all. `recovered`: the
    vehicle later had the same work (same name, compared normalized) sold on a later visit. -#}
with

work_orders as (

    select * from {{ ref('int_work_orders_localized') }}

),

jobs as (

    select
        job_id,
        shop_id,
        work_order_id,
        job_name,
        job_status,
        total,
        {{ autosync.normalized_name('job_name') }} as name_key

    from {{ ref('int_jobs_enriched') }}

),

inspections as (

    select * from {{ ref('int_inspection_items_aggregated_to_inspections') }}

),

{# Declined items of live inspections, with the status and name of the job their job_id names
    (NULL when it names none, or a job no longer live). -#}
declined_items as (

    select
        items.inspection_item_id,
        items.item_name,
        items.estimate_amount,
        inspections.shop_id,
        inspections.work_order_id,
        inspections.vehicle_id as inspection_vehicle_id,
        inspections.responded_at,
        inspections.responded_on,
        {{ autosync.normalized_name('items.item_name') }} as name_key,
        named_jobs.job_id as named_job_id,
        named_jobs.job_status as named_job_status,
        named_jobs.name_key as named_job_name_key

    from {{ ref('stg_autosync__inspection_items') }} as items
    inner join inspections
        on items.inspection_id = inspections.inspection_id
    left join jobs as named_jobs
        on items.job_id = named_jobs.job_id
    where items.approval_status = 'declined'

),

{# The item behind a declined job: the latest inspection response first, then the lowest id. -#}
items_behind_jobs as (

    select
        *,
        row_number() over (
            partition by named_job_id
            order by responded_at desc nulls last, inspection_item_id asc
        ) as item_rank

    from declined_items
    where named_job_status = 'declined'

),

declined_jobs as (

    select
        'job' as source,
        jobs.job_id as source_id,
        jobs.shop_id,
        jobs.work_order_id,
        items_behind_jobs.inspection_item_id,
        work_orders.customer_id,
        work_orders.vehicle_id,
        jobs.job_name as description,
        coalesce(items_behind_jobs.responded_on, work_orders.created_on) as declined_on,
        jobs.total as amount,
        jobs.name_key,
        items_behind_jobs.name_key as other_name_key

    from jobs
    inner join work_orders
        on jobs.work_order_id = work_orders.work_order_id
    left join items_behind_jobs
        on jobs.job_id = items_behind_jobs.named_job_id
        and items_behind_jobs.item_rank = 1
    where jobs.job_status = 'declined'

),

declined_item_rows as (

    select
        'inspection_item' as source,
        declined_items.inspection_item_id as source_id,
        declined_items.shop_id,
        declined_items.work_order_id,
        declined_items.inspection_item_id,
        work_orders.customer_id,
        coalesce(declined_items.inspection_vehicle_id, work_orders.vehicle_id) as vehicle_id,
        declined_items.item_name as description,
        coalesce(declined_items.responded_on, work_orders.created_on) as declined_on,
        declined_items.estimate_amount as amount,
        declined_items.name_key,
        declined_items.named_job_name_key as other_name_key

    from declined_items
    left join work_orders
        on declined_items.work_order_id = work_orders.work_order_id
    where declined_items.named_job_status is null
        or declined_items.named_job_status = 'pending'

),

declined as (

    select * from declined_jobs
    union all
    select * from declined_item_rows

),

{# Work sold on a vehicle's visits: jobs approved or completed, with the local creation date of
    their work order. -#}
sold_jobs as (

    select
        work_orders.vehicle_id,
        work_orders.created_on,
        work_orders.created_at,
        work_orders.work_order_id,
        jobs.job_id,
        jobs.total,
        jobs.name_key

    from jobs
    inner join work_orders
        on jobs.work_order_id = work_orders.work_order_id
    where jobs.job_status in ('approved', 'completed')
        and work_orders.vehicle_id is not null

),

{# Each row's names to look for: its own, and the item's or the job's name behind it. -#}
declined_names as (

    select source, source_id, vehicle_id, declined_on, name_key
    from declined
    where name_key is not null
    union all
    select source, source_id, vehicle_id, declined_on, other_name_key as name_key
    from declined
    where other_name_key is not null

),

recoveries as (

    select
        declined_names.source,
        declined_names.source_id,
        sold_jobs.total as recovered_amount,
        row_number() over (
            partition by declined_names.source, declined_names.source_id
            order by sold_jobs.created_at, sold_jobs.work_order_id, sold_jobs.job_id
        ) as recovery_rank

    from declined_names
    inner join sold_jobs
        on declined_names.vehicle_id = sold_jobs.vehicle_id
        and declined_names.name_key = sold_jobs.name_key
        and declined_names.declined_on < sold_jobs.created_on

),

{# The latest local creation date of a work order per vehicle: the vehicle came back after a
    decline when it is later than the decline's date. -#}
last_visits as (

    select
        vehicle_id,
        max(created_on) as last_work_order_created_on

    from work_orders
    where vehicle_id is not null
    group by 1

),

customers as (

    select * from {{ ref('dim_customers') }}

),

final as (

    select
        declined.source,
        declined.source_id,
        declined.shop_id,
        declined.work_order_id,
        declined.inspection_item_id,
        declined.customer_id,
        declined.vehicle_id,
        declined.description,
        declined.declined_on,
        {{ autosync.round_money('declined.amount') }} as amount,
        customers.customer_name,
        customers.phone as customer_phone,
        customers.email as customer_email,
        recoveries.source_id is not null as recovered,
        {{ autosync.round_money('recoveries.recovered_amount') }} as recovered_amount,
        coalesce(last_visits.last_work_order_created_on > declined.declined_on, false) as vehicle_returned

    from declined
    left join customers
        on declined.customer_id = customers.customer_id
    left join recoveries
        on declined.source = recoveries.source
        and declined.source_id = recoveries.source_id
        and recoveries.recovery_rank = 1
    left join last_visits
        on declined.vehicle_id = last_visits.vehicle_id

)

select * from final
