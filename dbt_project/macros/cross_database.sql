{#-
  Portable building blocks for DuckDB, Postgres and BigQuery.
  dbt's cross-database macros (date_trunc, datediff, type_*) are used wherever they give the same
  answer on all three; the dispatched macros below exist only where they do not:
  - ISO weeks: BigQuery's date_trunc(x, week) starts on Sunday, DuckDB and Postgres on Monday.
  - time zones: raw timestamps may be timestamptz (dlt on DuckDB/Postgres); a date taken from a
    timestamptz follows the session time zone, so staging turns them into UTC wall-clock values.
  - money division: DuckDB divides decimals as DOUBLE, which rounds 0.145 down to 0.14; the
    duckdb branch rounds half away from zero in exact integer cents instead.
-#}

{% macro type_money() -%}
    {{ return(adapter.dispatch('type_money', 'autosync')()) }}
{%- endmacro %}

{% macro default__type_money() -%}
    decimal(18, 2)
{%- endmacro %}

{% macro bigquery__type_money() -%}
    numeric
{%- endmacro %}


{% macro type_measure() -%}
    {{ return(adapter.dispatch('type_measure', 'autosync')()) }}
{%- endmacro %}

{% macro default__type_measure() -%}
    decimal(18, 4)
{%- endmacro %}

{% macro bigquery__type_measure() -%}
    numeric
{%- endmacro %}


{#- A UTC timestamp without time zone (BigQuery's TIMESTAMP is UTC by definition). -#}
{% macro utc_timestamp(column) -%}
    {{ return(adapter.dispatch('utc_timestamp', 'autosync')(column)) }}
{%- endmacro %}

{% macro default__utc_timestamp(column) -%}
    cast(cast({{ column }} as timestamptz) at time zone 'UTC' as timestamp)
{%- endmacro %}

{% macro bigquery__utc_timestamp(column) -%}
    cast({{ column }} as timestamp)
{%- endmacro %}


{#- The UTC calendar date of a UTC timestamp. -#}
{% macro utc_date(column) -%}
    cast({{ dbt.date_trunc('day', column) }} as date)
{%- endmacro %}

{#- First day of the UTC month. -#}
{% macro month_start(column) -%}
    cast({{ dbt.date_trunc('month', column) }} as date)
{%- endmacro %}


{#- Monday of the ISO week. -#}
{% macro week_start(column) -%}
    {{ return(adapter.dispatch('week_start', 'autosync')(column)) }}
{%- endmacro %}

{% macro default__week_start(column) -%}
    {#- date_trunc('week') is the ISO Monday on DuckDB and Postgres. -#}
    cast({{ dbt.date_trunc('week', column) }} as date)
{%- endmacro %}

{% macro bigquery__week_start(column) -%}
    {#- week means Sunday on BigQuery. `date_trunc(d, isoweek)` is the Monday on BigQuery itself, but
        the local BigQuery emulator the suite runs (bqemulator) rejects ISOWEEK and truncates
        week(monday) to the Sunday; stepping back from the day of week (1 = Sunday ... 7 = Saturday)
        to the Monday means the same on both. -#}
    date_sub(date({{ column }}), interval mod(extract(dayofweek from date({{ column }})) + 5, 7) day)
{%- endmacro %}


{#- A double-precision float. dbt.type_float() is `float`, which is 4-byte REAL on DuckDB. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'autosync')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro bigquery__type_double() -%}
    float64
{%- endmacro %}


{#- Hours between two timestamps, fractional; second precision is exact on every adapter. -#}
{% macro hours_between(start_column, end_column) -%}
    (cast({{ dbt.datediff(start_column, end_column, 'second') }} as {{ autosync.type_double() }}) / 3600)
{%- endmacro %}


{#- A ratio as a float; NULL (never 0, never an error) when the denominator is 0 or NULL. -#}
{% macro safe_divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('safe_divide', 'autosync')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__safe_divide(numerator, denominator) -%}
    (cast({{ numerator }} as {{ autosync.type_double() }}) / nullif({{ denominator }}, 0))
{%- endmacro %}

{% macro bigquery__safe_divide(numerator, denominator) -%}
    {#- Both sides FLOAT64: BigQuery makes FLOAT64 / NUMERIC a FLOAT64 anyway, but the local emulator
        the suite runs (bqemulator) returns NUMERIC, rounded to 9 decimal places. -#}
    safe_divide(cast({{ numerator }} as float64), cast({{ denominator }} as float64))
{%- endmacro %}


{#-
  money / count rounded to cents, half away from zero, exactly; NULL when the count is 0.
  Used for averages of money (average_repair_order), which METRICS.md rounds only at the end.
-#}
{% macro money_divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('money_divide', 'autosync')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__money_divide(numerator, denominator) -%}
    round(cast({{ numerator }} as numeric) / nullif({{ denominator }}, 0), 2)
{%- endmacro %}

{% macro duckdb__money_divide(numerator, denominator) -%}
    {#- DuckDB turns decimal / integer into DOUBLE; divide whole cents as integers instead. -#}
    case when coalesce({{ denominator }}, 0) = 0 then null else
        cast(
            sign({{ numerator }})
            * ((abs(cast(round({{ numerator }} * 100) as hugeint)) * 2 + {{ denominator }})
               // (2 * {{ denominator }}))
            as decimal(38, 0)
        ) * 0.01
    end
{%- endmacro %}

{% macro bigquery__money_divide(numerator, denominator) -%}
    round(safe_divide(cast({{ numerator }} as bignumeric), {{ denominator }}), 2)
{%- endmacro %}


{#- Money rounded to cents at the end of a calculation, in the money type. -#}
{% macro round_money(expression) -%}
    cast(round({{ expression }}, 2) as {{ autosync.type_money() }})
{%- endmacro %}
