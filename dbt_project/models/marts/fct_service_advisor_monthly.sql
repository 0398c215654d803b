{#- Grain: shop_id, service_advisor_id (NULL for work orders without one), month_start (the shop's
    local month of the work order's created_at). Jobs are counted per work order first. -#}
with

work_orders as (

    select * from {{ ref('int_work_orders_localized') }}

),

jobs_per_work_order as (

    select
        work_order_id,
        count(*) as jobs_presented,
        cast(sum(case when job_status in ('approved', 'completed') then 1 else 0 end) as {{ dbt.type_bigint() }})
            as jobs_sold,
        cast(sum(case when job_status = 'declined' then 1 else 0 end) as {{ dbt.type_bigint() }}) as jobs_declined,
        sum(total) as presented_amount,
        sum(case when job_status in ('approved', 'completed') then total else 0 end) as sold_amount,
        sum(case when job_status = 'declined' then total else 0 end) as declined_amount

    from {{ ref('int_jobs_enriched') }}
    group by 1

),

employees as (

    select * from {{ ref('dim_employees') }}

),

monthly as (

    select
        work_orders.shop_id,
        work_orders.service_advisor_id,
        {{ autosync.month_start('work_orders.created_on') }} as month_start,
        count(*) as work_orders_written,
        cast(coalesce(sum(jobs_per_work_order.jobs_presented), 0) as {{ dbt.type_bigint() }}) as jobs_presented,
        cast(coalesce(sum(jobs_per_work_order.jobs_sold), 0) as {{ dbt.type_bigint() }}) as jobs_sold,
        cast(coalesce(sum(jobs_per_work_order.jobs_declined), 0) as {{ dbt.type_bigint() }}) as jobs_declined,
        coalesce(sum(jobs_per_work_order.presented_amount), 0) as presented_amount,
        coalesce(sum(jobs_per_work_order.sold_amount), 0) as sold_amount,
        coalesce(sum(jobs_per_work_order.declined_amount), 0) as declined_amount

    from work_orders
    left join jobs_per_work_order
        on work_orders.work_order_id = jobs_per_work_order.work_order_id
    group by 1, 2, 3

),

final as (

    select
        monthly.shop_id,
        monthly.service_advisor_id,
        monthly.month_start,
        employees.employee_name as service_advisor_name,
        monthly.work_orders_written,
        monthly.jobs_presented,
        monthly.jobs_sold,
        monthly.jobs_declined,
        {{ autosync.safe_divide('monthly.jobs_sold', 'monthly.jobs_sold + monthly.jobs_declined') }} as closing_ratio,
        {{ autosync.round_money('monthly.presented_amount') }} as presented_amount,
        {{ autosync.round_money('monthly.sold_amount') }} as sold_amount,
        {{ autosync.round_money('monthly.declined_amount') }} as declined_amount,
        {#- decided work only, like closing_ratio: pending jobs wait for the customer -#}
        {{ autosync.safe_divide('monthly.sold_amount', 'monthly.sold_amount + monthly.declined_amount') }}
            as dollar_closing_ratio

    from monthly
    left join employees
        on monthly.service_advisor_id = employees.employee_id

)

select * from final
