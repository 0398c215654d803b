with

source as (

    {{ autosync.source_or_empty('autosync', 'inspections', [
        'id',
        'shop_id',
        'work_order_id',
        'vehicle_id',
        'technician_id',
        'status',
        'sent_at',
        'responded_at',
        'created_at',
        'updated_at',
        '_autosync_synced_at',
        '_autosync_deleted_at'
    ]) }}

),

renamed as (

    select
        cast(id as {{ dbt.type_bigint() }}) as inspection_id,
        cast(shop_id as {{ dbt.type_bigint() }}) as shop_id,
        cast(work_order_id as {{ dbt.type_bigint() }}) as work_order_id,
        cast(vehicle_id as {{ dbt.type_bigint() }}) as vehicle_id,
        cast(technician_id as {{ dbt.type_bigint() }}) as technician_id,
        cast(status as {{ dbt.type_string() }}) as inspection_status,
        {{ autosync.utc_timestamp('sent_at') }} as sent_at,
        {{ autosync.utc_timestamp('responded_at') }} as responded_at,
        {{ autosync.utc_timestamp('created_at') }} as created_at,
        {{ autosync.utc_timestamp('updated_at') }} as updated_at,
        {{ autosync.utc_timestamp('_autosync_synced_at') }} as synced_at,
        {{ autosync.utc_timestamp('_autosync_deleted_at') }} as deleted_at,
        _autosync_deleted_at is not null as is_deleted

    from source

)

select * from renamed
