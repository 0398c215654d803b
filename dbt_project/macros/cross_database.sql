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

{#- First day of the month of a date or a wall-clock timestamp. -#}
{% macro month_start(column) -%}
    {{ return(adapter.dispatch('month_start', 'autosync')(column)) }}
{%- endmacro %}

{% macro default__month_start(column) -%}
    cast(date_trunc('month', cast({{ column }} as {{ dbt.type_timestamp() }})) as date)
{%- endmacro %}

{% macro bigquery__month_start(column) -%}
    date_trunc(date({{ column }}), month)
{%- endmacro %}


{#- Monday of the ISO week. -#}
{% macro week_start(column) -%}
    {{ return(adapter.dispatch('week_start', 'autosync')(column)) }}
{%- endmacro %}

{% macro default__week_start(column) -%}
    {#- date_trunc('week') is the ISO Monday on DuckDB and Postgres. The argument is made a plain
        timestamp first: Postgres would turn a bare date into a timestamptz in the session zone. -#}
    cast(date_trunc('week', cast({{ column }} as {{ dbt.type_timestamp() }})) as date)
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
  Used for averages of money (average_repair_order), which the definitions round only at the end.
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


{#-
  The shop's clock. `column` is a UTC timestamp as staging makes it (UTC wall-clock time without
  a zone on DuckDB/Postgres, a TIMESTAMP on BigQuery); `timezone` an SQL expression giving an IANA
  zone name (usually a column of int_shop_timezones). The result is the wall-clock time in that
  zone, without a zone, so dates, weeks and months taken from it are the shop's own, whatever the
  session time zone, with daylight saving time applied as the zone database says.
-#}
{% macro local_timestamp(column, timezone) -%}
    {{ return(adapter.dispatch('local_timestamp', 'autosync')(column, timezone)) }}
{%- endmacro %}

{% macro default__local_timestamp(column, timezone) -%}
    {#- Postgres: the UTC wall-clock value read as UTC gives a timestamptz, which AT TIME ZONE
        turns into the zone's wall-clock time. -#}
    (({{ column }} at time zone 'UTC') at time zone {{ timezone }})
{%- endmacro %}

{% macro duckdb__local_timestamp(column, timezone) -%}
    {#- DuckDB (ICU): timezone('UTC', timestamp) reads it as UTC (timestamptz), timezone(tz,
        timestamptz) gives tz's wall-clock time. With the zone in a column ICU sets up the zone
        for every row (about 4x slower on 200,000 work orders); each zone the shops use is
        therefore spelled out as a constant, and the column form stays as the fallback for any
        other zone, so the result never depends on that list, only the speed does. -#}
    {%- set zones = autosync.known_timezones() -%}
    {%- if zones -%}
    case {{ timezone }}
        {%- for zone in zones %}
        when '{{ zone }}' then timezone('{{ zone }}', timezone('UTC', {{ column }}))
        {%- endfor %}
        else timezone({{ timezone }}, timezone('UTC', {{ column }}))
    end
    {%- else -%}
    timezone({{ timezone }}, timezone('UTC', {{ column }}))
    {%- endif -%}
{%- endmacro %}


{#- The zones int_shop_timezones holds, read when a model is compiled for a run (empty at parse
    time, in unit tests, or before int_shop_timezones exists). Only names that pass the zone-name
    check are used, so no value from the warehouse is pasted into SQL unchecked. -#}
{% macro known_timezones() -%}
    {%- set zones = [] -%}
    {%- if execute and model is defined and model.resource_type == 'model'
            and model.name != 'int_shop_timezones' and var('check_source_tables', true) -%}
        {%- set relation = load_relation(ref('int_shop_timezones')) -%}
        {%- if relation is not none -%}
            {%- for row in run_query('select distinct timezone from ' ~ relation ~ ' order by 1') -%}
                {%- if row[0] is string and modules.re.match('^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$', row[0]) -%}
                    {%- do zones.append(row[0]) -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(zones[:20]) }}
{%- endmacro %}

{% macro bigquery__local_timestamp(column, timezone) -%}
    datetime({{ column }}, {{ timezone }})
{%- endmacro %}


{#- The shop's local calendar date of a UTC timestamp. -#}
{% macro local_date(column, timezone) -%}
    {{ return(adapter.dispatch('local_date', 'autosync')(column, timezone)) }}
{%- endmacro %}

{% macro default__local_date(column, timezone) -%}
    cast({{ autosync.local_timestamp(column, timezone) }} as date)
{%- endmacro %}

{% macro bigquery__local_date(column, timezone) -%}
    date({{ column }}, {{ timezone }})
{%- endmacro %}


{#- Today in the given zone (for `as_of_date` when the var is not set). -#}
{% macro local_today(timezone) -%}
    {{ return(adapter.dispatch('local_today', 'autosync')(timezone)) }}
{%- endmacro %}

{% macro default__local_today(timezone) -%}
    cast((current_timestamp at time zone {{ timezone }}) as date)
{%- endmacro %}

{% macro duckdb__local_today(timezone) -%}
    cast(timezone({{ timezone }}, current_timestamp) as date)
{%- endmacro %}

{% macro bigquery__local_today(timezone) -%}
    current_date({{ timezone }})
{%- endmacro %}


{#- Days from one date to a later one (negative if earlier). -#}
{% macro days_between(start_date, end_date) -%}
    {{ return(adapter.dispatch('days_between', 'autosync')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__days_between(start_date, end_date) -%}
    cast(({{ end_date }}) - ({{ start_date }}) as {{ dbt.type_bigint() }})
{%- endmacro %}

{% macro duckdb__days_between(start_date, end_date) -%}
    cast(date_diff('day', {{ start_date }}, {{ end_date }}) as {{ dbt.type_bigint() }})
{%- endmacro %}

{% macro bigquery__days_between(start_date, end_date) -%}
    date_diff({{ end_date }}, {{ start_date }}, day)
{%- endmacro %}


{#- A date literal. -#}
{% macro date_literal(value) -%}
    cast('{{ value }}' as date)
{%- endmacro %}


{#- A job or item name as the marts compare names: lower case, surrounding whitespace removed, runs
    of whitespace collapsed to one space ("Brake  pads " = "brake pads"). -#}
{% macro normalized_name(column) -%}
    {{ return(adapter.dispatch('normalized_name', 'autosync')(column)) }}
{%- endmacro %}

{% macro default__normalized_name(column) -%}
    lower(trim(regexp_replace({{ column }}, '[[:space:]]+', ' ', 'g')))
{%- endmacro %}

{% macro bigquery__normalized_name(column) -%}
    {#- BigQuery's regexp_replace replaces every match; it takes no flags argument. -#}
    lower(trim(regexp_replace({{ column }}, '[[:space:]]+', ' ')))
{%- endmacro %}


{#- Days since 1970-01-01 of a date: the difference of two dates is a number of days on DuckDB and
    Postgres (dbt.datediff casts both to timestamps first, which costs more per row). -#}
{% macro day_number(column) -%}
    {{ return(adapter.dispatch('day_number', 'autosync')(column)) }}
{%- endmacro %}

{% macro default__day_number(column) -%}
    ({{ column }} - cast('1970-01-01' as date))
{%- endmacro %}

{% macro bigquery__day_number(column) -%}
    unix_date({{ column }})
{%- endmacro %}
