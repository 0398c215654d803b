{#- Grain: shop_id, technician_id, month_start of sent_at (the shop's local month). Items were aggregated per
    inspection upstream, so this is one group-by over inspections. -#}
with

inspections as (

    select * from {{ ref('int_inspection_items_aggregated_to_inspections') }}
    where sent_at is not null
        and technician_id is not null

),

monthly as (

    select
        shop_id,
        technician_id,
        {{ autosync.month_start('sent_on') }} as month_start,
        count(*) as inspections_sent,
        cast(sum(items_inspected) as {{ dbt.type_bigint() }}) as items_inspected,
        cast(sum(items_recommended) as {{ dbt.type_bigint() }}) as items_recommended,
        cast(sum(items_approved) as {{ dbt.type_bigint() }}) as items_approved,
        cast(sum(items_declined) as {{ dbt.type_bigint() }}) as items_declined,
        cast(sum(items_pending) as {{ dbt.type_bigint() }}) as items_pending,
        cast(sum(red_items) as {{ dbt.type_bigint() }}) as red_items,
        cast(sum(red_items_approved) as {{ dbt.type_bigint() }}) as red_items_approved,
        sum(recommended_amount) as recommended_amount,
        sum(approved_amount) as approved_amount,
        cast(sum(case when items_approved > 0 then 1 else 0 end) as {{ dbt.type_bigint() }})
            as inspections_with_approval

    from inspections
    group by 1, 2, 3

),

final as (

    select
        shop_id,
        technician_id,
        month_start,
        inspections_sent,
        items_inspected,
        items_recommended,
        items_approved,
        items_declined,
        items_pending,
        {{ autosync.safe_divide('items_approved', 'items_recommended') }} as item_approval_rate,
        {{ autosync.safe_divide('red_items_approved', 'red_items') }} as red_item_approval_rate,
        {{ autosync.round_money('recommended_amount') }} as recommended_amount,
        {{ autosync.round_money('approved_amount') }} as approved_amount,
        {{ autosync.safe_divide('approved_amount', 'recommended_amount') }} as dollar_approval_rate,
        inspections_with_approval

    from monthly

)

select * from final
