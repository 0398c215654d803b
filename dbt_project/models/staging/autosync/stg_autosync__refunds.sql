
{#- A child table: it has no _autosync_deleted_at of its own; a row is deleted when its
    top-level parent is (the connector replaces children with their parent). -#}
with

source as (

    {{ autosync.source_or_empty('autosync', 'payments__refunds', [
        'id',
        'shop_id',
        'payment_id',
        'amount',
        'reason',
        'created_at'
    ]) }}

),

renamed as (

    select
        cast(id as {{ dbt.type_bigint() }}) as refund_id,
        cast(shop_id as {{ dbt.type_bigint() }}) as shop_id,
        cast(payment_id as {{ dbt.type_bigint() }}) as payment_id,
        cast(amount as {{ autosync.type_money() }}) as refund_amount,
        cast(reason as {{ dbt.type_string() }}) as refund_reason,
        {{ autosync.utc_timestamp('created_at') }} as refunded_at

    from source

)

select * from renamed
