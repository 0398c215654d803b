{#- Per work order sums over the line items of its jobs that were not declined. Aggregating here,
    before any join to work orders, keeps every mart linear in the number of line items. The shop
    and the invoice day are the work order's own (grouping by them adds no rows): a filter on them,
    as the incremental fct_revenue_daily makes, reaches below the aggregation to the rows read. -#}
with

line_items as (

    select * from {{ ref('int_line_items_enriched') }}
    where not is_on_declined_job

),

aggregated as (

    select
        work_order_id,
        shop_id,
        work_order_invoiced_on,
        count(*) as line_items_count,
        sum(part_cost) as parts_cost,
        sum(case when line_item_type = 'labor' then hours end) as billed_labor_hours,
        sum(labor_cost) as labor_cost,
        cast(sum(case when is_labor_cost_missing then 1 else 0 end) as {{ dbt.type_bigint() }})
            as labor_items_without_rate

    from line_items
    group by work_order_id, shop_id, work_order_invoiced_on

)

select * from aggregated
