{#-
  Which zone a shop's dates follow, in this order:
  1. the var `shop_timezones`, a mapping of shop id to IANA zone set by the user
     (`--vars '{shop_timezones: {"2": "America/Chicago"}}'`), for a shop whose API record is wrong;
  2. the shop's own `timezone` field from the API;
  3. the var `default_timezone` (default `UTC`), for a shop the API gives no zone.
  Names are checked here, before any SQL runs: an invalid one fails the build with a message that
  says which var to fix (the warehouse would otherwise fail with its own, less helpful, error).
-#}
{% macro valid_timezone_name(name, where) -%}
    {%- if name is not string or not modules.re.match('^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$', name) -%}
        {{ exceptions.raise_compiler_error(
            where ~ ": " ~ (name | string) ~ " is not an IANA time zone name (e.g. America/Chicago); "
            ~ "fix it with --vars, e.g. --vars '{default_timezone: UTC}'") }}
    {%- endif -%}
    {{ return(name) }}
{%- endmacro %}

{% macro default_timezone() -%}
    '{{ autosync.valid_timezone_name(var('default_timezone', 'UTC'), "var default_timezone") }}'
{%- endmacro %}

{% macro shop_timezone_case(shop_id_column, timezone_column) -%}
    {%- set overrides = var('shop_timezones', {}) or {} -%}
    {%- if overrides is not mapping -%}
        {{ exceptions.raise_compiler_error(
            "var shop_timezones must map shop ids to IANA zone names, e.g. {\"2\": \"America/Chicago\"}; got "
            ~ (overrides | string)) }}
    {%- endif -%}
    case
        {%- for shop_id, zone in overrides.items() %}
        {%- if not (shop_id | string).isdigit() -%}
            {{ exceptions.raise_compiler_error("var shop_timezones: the key " ~ (shop_id | string) ~ " is not a shop id") }}
        {%- endif %}
        when {{ shop_id_column }} = {{ shop_id | int }}
            then '{{ autosync.valid_timezone_name(zone, "var shop_timezones, shop " ~ shop_id) }}'
        {%- endfor %}
        when {{ timezone_column }} is not null and {{ timezone_column }} <> '' then {{ timezone_column }}
        else {{ autosync.default_timezone() }}
    end
{%- endmacro %}

{#- The zone of a row joined to int_shop_timezones (left join): the default for a shop not listed. -#}
{% macro timezone_or_default(column) -%}
    coalesce({{ column }}, {{ autosync.default_timezone() }})
{%- endmacro %}
