{#- One row per shop: the IANA zone its dates follow (override var -> the shop's own timezone ->
    default var; see macros/shop_timezone.sql) and where that zone came from. -#}
with

shops as (

    select * from {{ ref('stg_autosync__shops') }}

),

resolved as (

    select
        shop_id,
        {{ autosync.shop_timezone_case('shop_id', 'api_timezone') }} as timezone,
        case
            {% for shop_id in (var('shop_timezones', {}) or {}).keys() -%}
            when shop_id = {{ shop_id | int }} then 'override'
            {% endfor -%}
            when api_timezone is not null and api_timezone <> '' then 'shop'
            else 'default'
        end as timezone_source

    from shops

)

select * from resolved
