with

refunds as (

    select * from {{ ref('stg_autosync__refunds') }}

),

aggregated as (

    select
        payment_id,
        count(*) as refunds_count,
        sum(refund_amount) as refunds_amount,
        max(refunded_at) as last_refunded_at

    from refunds
    group by payment_id

)

select * from aggregated
