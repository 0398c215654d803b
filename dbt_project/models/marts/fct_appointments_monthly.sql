{#- Grain: shop_id, month_start (the shop's local month of starts_at). Appointments deleted at the
    source and appointments without a start are left out. -#}
with

appointments as (

    select * from {{ ref('stg_autosync__appointments') }}
    where not is_deleted
        and starts_at is not null

),

shop_timezones as (

    select * from {{ ref('int_shop_timezones') }}

),

{# Live work orders that were invoiced: an appointment that led to one converted. -#}
invoiced_work_orders as (

    select work_order_id from {{ ref('int_work_orders_localized') }}
    where invoiced_at is not null

),

localized as (

    select
        appointments.shop_id,
        appointments.appointment_status,
        invoiced_work_orders.work_order_id is not null as is_converted,
        {{ autosync.month_start(autosync.local_date('appointments.starts_at',
                                autosync.timezone_or_default('shop_timezones.timezone'))) }} as month_start

    from appointments
    left join shop_timezones
        on appointments.shop_id = shop_timezones.shop_id
    left join invoiced_work_orders
        on appointments.work_order_id = invoiced_work_orders.work_order_id

),

monthly as (

    select
        shop_id,
        month_start,
        count(*) as appointments,
        cast(sum(case when appointment_status = 'scheduled' then 1 else 0 end) as {{ dbt.type_bigint() }})
            as scheduled,
        cast(sum(case when appointment_status in ('arrived', 'completed') then 1 else 0 end) as {{ dbt.type_bigint() }})
            as showed,
        cast(sum(case when appointment_status = 'no_show' then 1 else 0 end) as {{ dbt.type_bigint() }}) as no_shows,
        cast(sum(case when appointment_status = 'cancelled' then 1 else 0 end) as {{ dbt.type_bigint() }}) as cancelled,
        cast(sum(case when is_converted then 1 else 0 end) as {{ dbt.type_bigint() }}) as converted

    from localized
    group by 1, 2

),

final as (

    select
        shop_id,
        month_start,
        appointments,
        scheduled,
        showed,
        no_shows,
        cancelled,
        {{ autosync.safe_divide('showed', 'showed + no_shows') }} as show_rate,
        converted

    from monthly

)

select * from final
