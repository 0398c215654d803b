{#- The daily time spine MetricFlow joins metric_time to: the days of dim_dates. -#}
with

final as (

    select date_day from {{ ref('dim_dates') }}

)

select * from final
