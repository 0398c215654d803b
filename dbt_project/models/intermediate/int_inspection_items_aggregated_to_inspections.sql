{#- One row per inspection still live (neither it nor its work order deleted at the source), with
    its items counted by outcome. Items are aggregated per inspection before the join. A table:
    three marts and their tests read it, and a view would convert its timestamps to the shop's
    zone again for each. -#}
{{ config(materialized='table') }}
with

inspections as (

    select * from {{ ref('stg_autosync__inspections') }}
    where not is_deleted

),

shop_timezones as (

    select * from {{ ref('int_shop_timezones') }}

),

live_work_orders as (

    select work_order_id from {{ ref('stg_autosync__work_orders') }}
    where not is_deleted

),

items as (

    select
        *,
        item_condition in ('yellow', 'red') as is_recommended,
        item_condition in ('yellow', 'red') and approval_status = 'approved' as is_approved

    from {{ ref('stg_autosync__inspection_items') }}

),

items_per_inspection as (

    select
        inspection_id,
        count(*) as items_inspected,
        cast(sum(case when is_recommended then 1 else 0 end) as {{ dbt.type_bigint() }}) as items_recommended,
        cast(sum(case when is_approved then 1 else 0 end) as {{ dbt.type_bigint() }}) as items_approved,
        cast(
            sum(case when is_recommended and approval_status = 'declined' then 1 else 0 end) as {{ dbt.type_bigint() }}
        ) as items_declined,
        cast(
            sum(case when is_recommended and approval_status = 'pending' then 1 else 0 end) as {{ dbt.type_bigint() }}
        ) as items_pending,
        cast(sum(case when item_condition = 'red' then 1 else 0 end) as {{ dbt.type_bigint() }}) as red_items,
        cast(sum(case when item_condition = 'red' and is_approved then 1 else 0 end) as {{ dbt.type_bigint() }})
            as red_items_approved,
        sum(case when is_recommended then estimate_amount end) as recommended_amount,
        sum(case when is_approved then estimate_amount end) as approved_amount

    from items
    group by inspection_id

),

aggregated as (

    select
        inspections.inspection_id,
        inspections.shop_id,
        inspections.work_order_id,
        inspections.vehicle_id,
        inspections.technician_id,
        inspections.inspection_status,
        inspections.sent_at,
        inspections.responded_at,
        inspections.created_at,
        {{ autosync.local_date('inspections.sent_at', autosync.timezone_or_default('shop_timezones.timezone')) }}
            as sent_on,
        {{ autosync.local_date('inspections.responded_at', autosync.timezone_or_default('shop_timezones.timezone')) }}
            as responded_on,
        coalesce(items_per_inspection.items_inspected, 0) as items_inspected,
        coalesce(items_per_inspection.items_recommended, 0) as items_recommended,
        coalesce(items_per_inspection.items_approved, 0) as items_approved,
        coalesce(items_per_inspection.items_declined, 0) as items_declined,
        coalesce(items_per_inspection.items_pending, 0) as items_pending,
        coalesce(items_per_inspection.red_items, 0) as red_items,
        coalesce(items_per_inspection.red_items_approved, 0) as red_items_approved,
        coalesce(items_per_inspection.recommended_amount, 0) as recommended_amount,
        coalesce(items_per_inspection.approved_amount, 0) as approved_amount

    from inspections
    left join items_per_inspection
        on inspections.inspection_id = items_per_inspection.inspection_id
    left join shop_timezones
        on inspections.shop_id = shop_timezones.shop_id
    where inspections.work_order_id is null
        or inspections.work_order_id in (select live_work_orders.work_order_id from live_work_orders)

)

select * from aggregated
