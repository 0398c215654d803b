{#- Every day from start to end (inclusive, 'YYYY-MM-DD'), as column date_day. Numbers come from a
    cross join of digits, which every warehouse runs (generate_series / GENERATE_DATE_ARRAY differ
    by dialect); 10^5 days is 270 years, more than any spine needs. -#}
{% macro date_series(start, end) -%}
    with digits as (
        select 0 as d union all select 1 union all select 2 union all select 3 union all select 4
        union all select 5 union all select 6 union all select 7 union all select 8 union all select 9
    ),
    numbers as (
        select a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d as n
        from digits as a cross join digits as b cross join digits as c cross join digits as e cross join digits as f
    )
    select cast({{ dbt.dateadd('day', 'n', autosync.date_literal(start)) }} as date) as date_day
    from numbers
    where n <= {{ autosync.days_between(autosync.date_literal(start), autosync.date_literal(end)) }}
{%- endmacro %}
