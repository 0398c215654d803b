with

payments as (

    select * from {{ ref('stg_autosync__payments') }}
    where not is_deleted

),

live_work_orders as (

    select work_order_id from {{ ref('stg_autosync__work_orders') }}
    where not is_deleted

),

shop_timezones as (

    select * from {{ ref('int_shop_timezones') }}

),

refunds_per_payment as (

    select * from {{ ref('int_refunds_aggregated_to_payments') }}

),

final as (

    select
        payments.payment_id,
        payments.shop_id,
        payments.work_order_id,
        payments.payment_method,
        payments.payment_status,
        payments.payment_status = 'succeeded' as is_succeeded,
        payments.card_brand,
        payments.card_last4,
        payments.amount,
        payments.refunded_amount,
        coalesce(refunds_per_payment.refunds_count, 0) as refunds_count,
        {{ autosync.round_money('coalesce(refunds_per_payment.refunds_amount, 0)') }} as refunds_amount,
        {{ autosync.round_money(
            "case when payments.payment_status = 'succeeded' then payments.amount else 0 end"
            ~ " - coalesce(refunds_per_payment.refunds_amount, 0)") }} as net_collected_amount,
        payments.created_at,
        payments.updated_at,
        refunds_per_payment.last_refunded_at,
        {{ autosync.local_date('payments.created_at', autosync.timezone_or_default('shop_timezones.timezone')) }}
            as payment_date

    from payments
    inner join live_work_orders
        on payments.work_order_id = live_work_orders.work_order_id
    left join refunds_per_payment
        on payments.payment_id = refunds_per_payment.payment_id
    left join shop_timezones
        on payments.shop_id = shop_timezones.shop_id

)

select * from final
