{#-
  Reconciliation: the sum of a column of this model equals the sum of an expression over another
  model, per group (e.g. per shop). Returns the groups that differ by more than `tolerance`.
  `to_where` filters the other model, `where` (the standard test config) filters this one.
-#}
{% test sums_reconcile(model, column_name, to, to_expression, group_by=[], to_where=None, tolerance=0) %}

with

this_side as (

    select
        {% for column in group_by %}{{ column }}, {% endfor %}
        sum({{ column_name }}) as this_total
    from {{ model }}
    {% if group_by %}group by {{ group_by | join(', ') }}{% endif %}

),

other_side as (

    select
        {% for column in group_by %}{{ column }}, {% endfor %}
        sum({{ to_expression }}) as other_total
    from {{ to }}
    {% if to_where %}where {{ to_where }}{% endif %}
    {% if group_by %}group by {{ group_by | join(', ') }}{% endif %}

),

compared as (

    select
        {% for column in group_by %}coalesce(this_side.{{ column }}, other_side.{{ column }}) as {{ column }}, {% endfor %}
        coalesce(this_side.this_total, 0) as this_total,
        coalesce(other_side.other_total, 0) as other_total
    from this_side
    full outer join other_side
        {% if group_by %}
        on {% for column in group_by %}this_side.{{ column }} = other_side.{{ column }}{% if not loop.last %} and {% endif %}{% endfor %}
        {% else %}
        on 1 = 1
        {% endif %}

)

select *
from compared
where abs(this_total - other_total) > {{ tolerance }}

{% endtest %}
