{#- Every row satisfies a SQL boolean expression (returns the rows that do not). -#}
{% test expression_is_true(model, expression, column_name=None) %}

select *
from {{ model }}
where not (
    {%- if column_name %} {{ column_name }} {% endif %} {{ expression }}
)

{% endtest %}
