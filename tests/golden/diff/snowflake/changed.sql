-- params: []
SELECT
  COALESCE(w.cid, l.customer_id) AS cid,
  COALESCE(w.want, '') AS want
FROM RECONCILE_WANTED AS w
FULL OUTER JOIN RECONCILE_LAST AS l
  ON w.cid = l.customer_id
LEFT JOIN RECONCILE_LISTS AS s
  ON s.segments = l.segments
WHERE
  CASE
    WHEN NOT w.cid IS NULL AND NOT COALESCE(l.known, FALSE)
    THEN 1
    WHEN COALESCE(w.want, '') = COALESCE(s.mine, '')
    THEN 0
    ELSE 1
  END = 1
