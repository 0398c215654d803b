with

source as (

    {{ autosync.source_or_empty('autosync', 'work_orders', [
        'id',
        'shop_id',
        'number',
        'customer_id',
        'vehicle_id',
        'technician_id',
        'service_advisor_id',
        'status',
        'notes',
        'mileage_in',
        'labor_total',
        'parts_total',
        'fees_total',
        'subtotal',
        'tax_total',
        'total',
        'amount_paid',
        'balance_due',
        'started_at',
        'completed_at',
        'invoiced_at',
        'created_at',
        'updated_at',
        '_autosync_synced_at',
        '_autosync_deleted_at'
    ]) }}

),

renamed as (

    select
        cast(id as {{ dbt.type_bigint() }}) as work_order_id,
        cast(shop_id as {{ dbt.type_bigint() }}) as shop_id,
        cast(number as {{ dbt.type_string() }}) as work_order_number,
        cast(customer_id as {{ dbt.type_bigint() }}) as customer_id,
        cast(vehicle_id as {{ dbt.type_bigint() }}) as vehicle_id,
        cast(technician_id as {{ dbt.type_bigint() }}) as technician_id,
        cast(service_advisor_id as {{ dbt.type_bigint() }}) as service_advisor_id,
        cast(status as {{ dbt.type_string() }}) as work_order_status,
        cast(notes as {{ dbt.type_string() }}) as work_order_notes,
        cast(mileage_in as {{ dbt.type_bigint() }}) as mileage_in,
        cast(labor_total as {{ autosync.type_money() }}) as labor_total,
        cast(parts_total as {{ autosync.type_money() }}) as parts_total,
        cast(fees_total as {{ autosync.type_money() }}) as fees_total,
        cast(subtotal as {{ autosync.type_money() }}) as subtotal,
        cast(tax_total as {{ autosync.type_money() }}) as tax_total,
        cast(total as {{ autosync.type_money() }}) as total,
        cast(amount_paid as {{ autosync.type_money() }}) as amount_paid,
        cast(balance_due as {{ autosync.type_money() }}) as balance_due,
        {{ autosync.utc_timestamp('started_at') }} as started_at,
        {{ autosync.utc_timestamp('completed_at') }} as completed_at,
        {{ autosync.utc_timestamp('invoiced_at') }} as invoiced_at,
        {{ autosync.utc_timestamp('created_at') }} as created_at,
        {{ autosync.utc_timestamp('updated_at') }} as updated_at,
        {{ autosync.utc_timestamp('_autosync_synced_at') }} as synced_at,
        {{ autosync.utc_timestamp('_autosync_deleted_at') }} as deleted_at,
        _autosync_deleted_at is not null as is_deleted

    from source

)

select * from renamed
