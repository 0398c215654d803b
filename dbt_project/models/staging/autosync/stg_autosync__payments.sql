with

source as (

    {{ autosync.source_or_empty('autosync', 'payments', [
        'id',
        'shop_id',
        'work_order_id',
        'amount',
        'method',
        'status',
        'card_brand',
        'last4',
        'refunded_amount',
        'created_at',
        'updated_at',
        '_autosync_synced_at',
        '_autosync_deleted_at'
    ]) }}

),

renamed as (

    select
        cast(id as {{ dbt.type_bigint() }}) as payment_id,
        cast(shop_id as {{ dbt.type_bigint() }}) as shop_id,
        cast(work_order_id as {{ dbt.type_bigint() }}) as work_order_id,
        cast(amount as {{ autosync.type_money() }}) as amount,
        cast(method as {{ dbt.type_string() }}) as payment_method,
        cast(status as {{ dbt.type_string() }}) as payment_status,
        cast(card_brand as {{ dbt.type_string() }}) as card_brand,
        cast(last4 as {{ dbt.type_string() }}) as card_last4,
        cast(refunded_amount as {{ autosync.type_money() }}) as refunded_amount,
        {{ autosync.utc_timestamp('created_at') }} as created_at,
        {{ autosync.utc_timestamp('updated_at') }} as updated_at,
        {{ autosync.utc_timestamp('_autosync_synced_at') }} as synced_at,
        {{ autosync.utc_timestamp('_autosync_deleted_at') }} as deleted_at,
        _autosync_deleted_at is not null as is_deleted

    from source

)

select * from renamed
