{#- Grain: shop_id, month_start (the shop's local month of invoiced_at). The figures a shop owner
    runs the shop on. Line-item sums come per work order (unrounded) from the intermediate model,
    customers' first and previous invoices from one pass over the invoiced work orders. -#}
with

invoiced_work_orders as (

    select * from {{ ref('int_work_orders_localized') }}
    where invoiced_at is not null

),

line_items_per_work_order as (

    select * from {{ ref('int_line_items_aggregated_to_work_orders') }}

),

work_orders as (

    select
        invoiced_work_orders.work_order_id,
        invoiced_work_orders.shop_id,
        invoiced_work_orders.customer_id,
        invoiced_work_orders.invoiced_at,
        invoiced_work_orders.invoiced_on,
        {{ autosync.month_start('invoiced_work_orders.invoiced_on') }} as month_start,
        invoiced_work_orders.subtotal,
        invoiced_work_orders.labor_total,
        invoiced_work_orders.parts_total,
        coalesce(line_items_per_work_order.billed_labor_hours, 0) as labor_hours,
        coalesce(line_items_per_work_order.labor_cost, 0) as labor_cost,
        coalesce(line_items_per_work_order.labor_items_without_rate, 0) as labor_items_without_rate,
        coalesce(line_items_per_work_order.parts_cost, 0) as parts_cost

    from invoiced_work_orders
    left join line_items_per_work_order
        on invoiced_work_orders.work_order_id = line_items_per_work_order.work_order_id

),

{# A customer is new in the month of their first invoiced work order (at this shop). -#}
first_invoices as (

    select
        shop_id,
        customer_id,
        min(invoiced_at) as first_invoiced_at

    from work_orders
    where customer_id is not null
    group by 1, 2

),

new_customers as (

    select
        work_orders.shop_id,
        work_orders.month_start,
        count(distinct work_orders.customer_id) as new_customers

    from work_orders
    inner join first_invoices
        on work_orders.shop_id = first_invoices.shop_id
        and work_orders.customer_id = first_invoices.customer_id
        and work_orders.invoiced_at = first_invoices.first_invoiced_at
    group by 1, 2

),

{# Returning: a work order invoiced in the month and another of the same customer invoiced
    earlier, on a local date at most 365 days before. Each customer's invoices are few, so the
    self-join on the customer stays small. -#}
returning_customers as (

    select
        this_visit.shop_id,
        this_visit.month_start,
        count(distinct this_visit.customer_id) as returning_customers

    from work_orders as this_visit
    inner join work_orders as earlier_visit
        on this_visit.shop_id = earlier_visit.shop_id
        and this_visit.customer_id = earlier_visit.customer_id
        and this_visit.invoiced_at > earlier_visit.invoiced_at
        and earlier_visit.invoiced_on >= cast({{ dbt.dateadd('day', -365, 'this_visit.invoiced_on') }} as date)
    group by 1, 2

),

monthly as (

    select
        shop_id,
        month_start,
        count(*) as car_count,
        sum(subtotal) as invoiced_revenue,
        sum(labor_total) as labor_revenue,
        sum(parts_total) as parts_revenue,
        sum(labor_hours) as labor_hours_sold,
        sum(labor_cost) as labor_cost,
        sum(labor_items_without_rate) as labor_items_without_rate,
        sum(parts_cost) as parts_cost

    from work_orders
    group by 1, 2

),

final as (

    select
        monthly.shop_id,
        monthly.month_start,
        monthly.car_count,
        {{ autosync.round_money('monthly.invoiced_revenue') }} as invoiced_revenue,
        cast(
            {{ autosync.money_divide('monthly.invoiced_revenue', 'monthly.car_count') }} as {{ autosync.type_money() }}
        ) as average_repair_order,
        {{ autosync.round_money('monthly.labor_revenue') }} as labor_revenue,
        {{ autosync.round_money('monthly.parts_revenue') }} as parts_revenue,
        cast(monthly.labor_hours_sold as {{ autosync.type_measure() }}) as labor_hours_sold,
        {{ autosync.safe_divide('monthly.labor_revenue', 'monthly.labor_hours_sold') }} as effective_labor_rate,
        {{ autosync.safe_divide('monthly.labor_hours_sold', 'monthly.car_count') }} as hours_per_repair_order,
        {{ autosync.round_money('monthly.labor_cost') }} as labor_cost,
        monthly.labor_items_without_rate = 0 as labor_cost_complete,
        {{ autosync.round_money('monthly.parts_cost') }} as parts_cost,
        {{ autosync.round_money('monthly.invoiced_revenue - monthly.labor_cost - monthly.parts_cost') }}
            as gross_profit,
        {{ autosync.safe_divide('monthly.invoiced_revenue - monthly.labor_cost - monthly.parts_cost',
                                'monthly.invoiced_revenue') }} as gross_margin,
        coalesce(new_customers.new_customers, 0) as new_customers,
        coalesce(returning_customers.returning_customers, 0) as returning_customers

    from monthly
    left join new_customers
        on monthly.shop_id = new_customers.shop_id
        and monthly.month_start = new_customers.month_start
    left join returning_customers
        on monthly.shop_id = returning_customers.shop_id
        and monthly.month_start = returning_customers.month_start

)

select * from final
