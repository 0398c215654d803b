{#- Grain: shop_id, month_start (the shop's local month of invoiced_at): the figures a shop owner
    runs the shop on, one row per month with an invoiced work order. Line-item sums come per work
    order (unrounded) from the intermediate model, job figures from fct_jobs, and each customer is
    new, returning or reactivated once per month from one pass over their invoiced months. The
    shop-wide ratios of the other marts sit beside them, each in its own event's month. -#}
with

invoiced_work_orders as (

    select * from {{ ref('int_work_orders_localized') }}
    where invoiced_at is not null

),

line_items_per_work_order as (

    select * from {{ ref('int_line_items_aggregated_to_work_orders') }}

),

jobs as (

    select * from {{ ref('fct_jobs') }}

),

jobs_per_work_order as (

    select
        work_order_id,
        sum(labor_hours) as hours_presented,
        cast(sum(case when is_sold then 1 else 0 end) as {{ dbt.type_bigint() }}) as jobs_sold,
        cast(sum(case when is_comeback then 1 else 0 end) as {{ dbt.type_bigint() }}) as comeback_jobs

    from jobs
    where work_order_invoiced_on is not null
    group by work_order_id

),

inspected_work_orders as (

    select distinct work_order_id
    from {{ ref('fct_inspections') }}
    where work_order_id is not null

),

work_orders as (

    select
        invoiced_work_orders.work_order_id,
        invoiced_work_orders.shop_id,
        invoiced_work_orders.customer_id,
        invoiced_work_orders.invoiced_on,
        {{ autosync.month_start('invoiced_work_orders.invoiced_on') }} as month_start,
        invoiced_work_orders.subtotal,
        invoiced_work_orders.labor_total,
        invoiced_work_orders.parts_total,
        coalesce(line_items_per_work_order.billed_labor_hours, 0) as labor_hours,
        coalesce(line_items_per_work_order.labor_cost, 0) as labor_cost,
        coalesce(line_items_per_work_order.labor_items_without_rate, 0) as labor_items_without_rate,
        coalesce(line_items_per_work_order.parts_cost, 0) as parts_cost,
        coalesce(jobs_per_work_order.hours_presented, 0) as hours_presented,
        coalesce(jobs_per_work_order.jobs_sold, 0) as jobs_sold,
        coalesce(jobs_per_work_order.comeback_jobs, 0) as comeback_jobs,
        case when inspected_work_orders.work_order_id is null then 0 else 1 end as is_inspected

    from invoiced_work_orders
    left join line_items_per_work_order
        on invoiced_work_orders.work_order_id = line_items_per_work_order.work_order_id
    left join jobs_per_work_order
        on invoiced_work_orders.work_order_id = jobs_per_work_order.work_order_id
    left join inspected_work_orders
        on invoiced_work_orders.work_order_id = inspected_work_orders.work_order_id

),

{# Each customer's months with an invoice at the shop, and the last local invoice date in each. -#}
customer_months as (

    select
        shop_id,
        customer_id,
        month_start,
        max(invoiced_on) as last_invoiced_on

    from work_orders
    where customer_id is not null
    group by shop_id, customer_id, month_start

),

{# New: no invoice before this month. Otherwise the latest invoice before the month's first day
    is the last one of the customer's previous invoiced month: returning within 365 days of the
    first day, reactivated beyond. One status per customer and month. -#}
customer_statuses as (

    select
        shop_id,
        month_start,
        case
            when previous_invoiced_on is null then 'new'
            when {{ autosync.days_between('previous_invoiced_on', 'month_start') }} <= 365 then 'returning'
            else 'reactivated'
        end as customer_status

    from (
        select
            shop_id,
            customer_id,
            month_start,
            lag(last_invoiced_on) over (partition by shop_id, customer_id order by month_start)
                as previous_invoiced_on
        from customer_months
    ) as with_previous

),

customers_monthly as (

    select
        shop_id,
        month_start,
        count(*) as customers_served,
        cast(sum(case when customer_status = 'new' then 1 else 0 end) as {{ dbt.type_bigint() }}) as new_customers,
        cast(sum(case when customer_status = 'returning' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as returning_customers,
        cast(sum(case when customer_status = 'reactivated' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as reactivated_customers

    from customer_statuses
    group by shop_id, month_start

),

{# Shop-wide ratios, each in its own event's month: jobs by their work order's created_at,
    inspections by sent_at, appointments by starts_at. -#}
jobs_decided_monthly as (

    select
        shop_id,
        month_start,
        sum(case when is_sold then total else 0 end) as sold_amount,
        sum(case when job_status = 'declined' then total else 0 end) as declined_amount

    from (
        select
            shop_id,
            is_sold,
            job_status,
            total,
            {{ autosync.month_start('work_order_created_on') }} as month_start
        from jobs
    ) as jobs_by_month
    group by shop_id, month_start

),

inspections_monthly as (

    select
        shop_id,
        month_start,
        sum(items_approved) as items_approved,
        sum(items_recommended) as items_recommended

    from (
        select
            shop_id,
            items_approved,
            items_recommended,
            {{ autosync.month_start('sent_on') }} as month_start
        from {{ ref('fct_inspections') }}
        where is_sent
    ) as sent_inspections
    group by shop_id, month_start

),

appointments_monthly as (

    select * from {{ ref('fct_appointments_monthly') }}

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
        sum(parts_cost) as parts_cost,
        cast(sum(is_inspected) as {{ dbt.type_bigint() }}) as work_orders_inspected,
        sum(hours_presented) as hours_presented,
        cast(sum(jobs_sold) as {{ dbt.type_bigint() }}) as jobs_sold,
        cast(sum(comeback_jobs) as {{ dbt.type_bigint() }}) as comeback_jobs

    from work_orders
    group by shop_id, month_start

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
        {{ autosync.round_money('monthly.labor_revenue - monthly.labor_cost') }} as labor_gross_profit,
        {{ autosync.round_money('monthly.parts_revenue - monthly.parts_cost') }} as parts_gross_profit,
        {{ autosync.safe_divide('monthly.parts_revenue - monthly.parts_cost', 'monthly.parts_revenue') }}
            as parts_gross_margin,
        {{ autosync.safe_divide('monthly.invoiced_revenue - monthly.labor_cost - monthly.parts_cost',
                                'monthly.labor_hours_sold') }} as gross_profit_per_labor_hour,
        coalesce(customers_monthly.customers_served, 0) as customers_served,
        coalesce(customers_monthly.new_customers, 0) as new_customers,
        coalesce(customers_monthly.returning_customers, 0) as returning_customers,
        coalesce(customers_monthly.reactivated_customers, 0) as reactivated_customers,
        monthly.work_orders_inspected,
        {{ autosync.safe_divide('monthly.work_orders_inspected', 'monthly.car_count') }} as inspection_rate,
        cast(monthly.hours_presented as {{ autosync.type_measure() }}) as hours_presented,
        {{ autosync.safe_divide('monthly.labor_hours_sold', 'monthly.hours_presented') }} as hours_sold_ratio,
        monthly.jobs_sold,
        monthly.comeback_jobs,
        {{ autosync.safe_divide('monthly.comeback_jobs', 'monthly.jobs_sold') }} as comeback_rate,
        {{ autosync.safe_divide('jobs_decided_monthly.sold_amount',
                                'jobs_decided_monthly.sold_amount + jobs_decided_monthly.declined_amount') }}
            as dollar_closing_ratio,
        {{ autosync.safe_divide('inspections_monthly.items_approved', 'inspections_monthly.items_recommended') }}
            as item_approval_rate,
        appointments_monthly.show_rate

    from monthly
    left join customers_monthly
        on monthly.shop_id = customers_monthly.shop_id
        and monthly.month_start = customers_monthly.month_start
    left join jobs_decided_monthly
        on monthly.shop_id = jobs_decided_monthly.shop_id
        and monthly.month_start = jobs_decided_monthly.month_start
    left join inspections_monthly
        on monthly.shop_id = inspections_monthly.shop_id
        and monthly.month_start = inspections_monthly.month_start
    left join appointments_monthly
        on monthly.shop_id = appointments_monthly.shop_id
        and monthly.month_start = appointments_monthly.month_start

)

select * from final
