
{#- A child table: it has no _autosync_deleted_at of its own; a row is deleted when its
    top-level parent is (the connector replaces children with their parent). -#}
with

source as (

    {{ autosync.source_or_empty('autosync', 'work_orders__jobs', [
        'id',
        'shop_id',
        'work_order_id',
        'name',
        'technician_id',
        'status',
        'approved_at',
        'labor_total',
        'parts_total',
        'total'
    ]) }}

),

renamed as (

    select
        cast(id as {{ dbt.type_bigint() }}) as job_id,
        cast(shop_id as {{ dbt.type_bigint() }}) as shop_id,
        cast(work_order_id as {{ dbt.type_bigint() }}) as work_order_id,
        cast(name as {{ dbt.type_string() }}) as job_name,
        cast(technician_id as {{ dbt.type_bigint() }}) as technician_id,
        cast(status as {{ dbt.type_string() }}) as job_status,
        {{ autosync.utc_timestamp('approved_at') }} as approved_at,
        cast(labor_total as {{ autosync.type_money() }}) as labor_total,
        cast(parts_total as {{ autosync.type_money() }}) as parts_total,
        cast(total as {{ autosync.type_money() }}) as total,
        status = 'declined' as is_declined

    from source

)

select * from renamed
