{#- Live work orders (not deleted at the source) with their shop's zone and their milestones as
    the shop's local dates. Every mart that puts a work order on a day, week or month reads the
    dates from here, so the conversion is written once. A table, not a view like the other
    intermediate models: a dozen models read it, and a view would convert every timestamp
    again for each of them. Incremental (macros/incremental.sql): a build rebuilds the work
    orders loaded or marked deleted since the last one. -#}
{{ config(
    materialized='incremental',
    unique_key='work_order_id',
    incremental_strategy=autosync.incremental_strategy(),
    on_schema_change='fail',
    pre_hook="{{ autosync.incremental_delete() }}",
    post_hook="{{ autosync.incremental_commit() }}"
) }}
{%- set window = autosync.incremental_window('work_orders') %}
{{ autosync.incremental_window_marker(window) }}
with

work_orders as (

    select work_orders.* from {{ ref('stg_autosync__work_orders') }} as work_orders
    where not work_orders.is_deleted
    {%- if not window.full %}
        and {{ autosync.touched_work_orders(window, 'work_orders') }}
    {%- endif %}

),

shop_timezones as (

    select * from {{ ref('int_shop_timezones') }}

),

zoned as (

    select
        work_orders.*,
        {{ autosync.timezone_or_default('shop_timezones.timezone') }} as shop_timezone

    from work_orders
    left join shop_timezones
        on work_orders.shop_id = shop_timezones.shop_id

),

localized as (

    select
        *,
        {{ autosync.local_date('created_at', 'shop_timezone') }} as created_on,
        {{ autosync.local_date('completed_at', 'shop_timezone') }} as completed_on,
        {{ autosync.local_date('invoiced_at', 'shop_timezone') }} as invoiced_on

    from zoned

)

select * from localized
