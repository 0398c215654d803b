{#- One row per live customer, with their visits: work orders invoiced (live ones), on the shop's
    local calendar. -#}
with

customers as (

    select * from {{ ref('stg_autosync__customers') }}
    where not is_deleted

),

visits as (

    select
        customer_id,
        min(invoiced_on) as first_visit_on,
        max(invoiced_on) as last_visit_on,
        count(*) as visits,
        sum(subtotal) as lifetime_revenue

    from {{ ref('int_work_orders_localized') }}
    where invoiced_at is not null
        and customer_id is not null
    group by 1

),

final as (

    select
        customers.customer_id,
        customers.shop_id,
        customers.first_name,
        customers.last_name,
        {{ dbt.concat(['customers.first_name', "' '", 'customers.last_name']) }} as customer_name,
        customers.email,
        customers.phone,
        customers.is_business,
        customers.company_name,
        customers.address_street,
        customers.address_city,
        customers.address_state,
        customers.address_zip,
        visits.first_visit_on,
        visits.last_visit_on,
        coalesce(visits.visits, 0) as visits,
        {{ autosync.round_money('coalesce(visits.lifetime_revenue, 0)') }} as lifetime_revenue,
        customers.created_at,
        customers.updated_at

    from customers
    left join visits
        on customers.customer_id = visits.customer_id

)

select * from final
