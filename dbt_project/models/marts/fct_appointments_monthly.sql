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

localized as (

    select
        appointments.shop_id,
        appointments.appointment_status,
        {{ autosync.month_start(autosync.local_date('appointments.starts_at',
                                autosync.timezone_or_default('shop_timezones.timezone'))) }} as month_start

    from appointments
    left join shop_timezones
        on appointments.shop_id = shop_timezones.shop_id

),

monthly as (

    select
        shop_id,
        month_start,
        count(*) as appointments,
        cast(sum(case when appointment_status in ('arrived', 'completed') then 1 else 0 end) as {{ dbt.type_bigint() }})
            as completed,
        cast(sum(case when appointment_status = 'no_show' then 1 else 0 end) as {{ dbt.type_bigint() }}) as no_shows,
        cast(sum(case when appointment_status = 'cancelled' then 1 else 0 end) as {{ dbt.type_bigint() }}) as cancelled

    from localized
    group by 1, 2

),

final as (

    select
        shop_id,
        month_start,
        appointments,
        completed,
        no_shows,
        cancelled,
        {{ autosync.safe_divide('completed', 'completed + no_shows') }} as show_rate

    from monthly

)

select * from final
