{#- The date spine for dashboards: one row per calendar day from var date_spine_start to
    date_spine_end, with the week and month the marts use. Dates are plain calendar days: each
    mart's dates are already the shop's local ones. -#}
with

days as (

    {{ autosync.date_series(var('date_spine_start'), var('date_spine_end')) }}

),

weeks as (

    select
        date_day,
        {{ autosync.week_start('date_day') }} as week_start

    from days

),

final as (

    select
        date_day,
        week_start,
        {{ autosync.month_start('date_day') }} as month_start,
        cast({{ dbt.date_trunc('year', 'date_day') }} as date) as year_start,
        cast(extract(year from date_day) as {{ dbt.type_bigint() }}) as year_number,
        cast(extract(month from date_day) as {{ dbt.type_bigint() }}) as month_number,
        {{ autosync.days_between('week_start', 'date_day') }} + 1 as iso_day_of_week

    from weeks

)

select * from final
