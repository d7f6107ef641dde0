-- params: []
SELECT
  l.segments,
  w.want,
  COUNT(*)
FROM RECONCILE_WANTED AS w
FULL OUTER JOIN RECONCILE_LAST AS l
  ON w.cid = l.customer_id
LEFT JOIN RECONCILE_LISTS AS s
  ON s.segments = l.segments
GROUP BY
  l.segments,
  w.want
