-- params: []
SELECT
  COUNT(w.cid),
  COUNT(l.customer_id),
  COALESCE(
    SUM(
      CASE
        WHEN NOT w.cid IS NULL AND NOT COALESCE(l.known, FALSE)
        THEN 1
        WHEN COALESCE(w.want, '') = COALESCE(s.mine, '')
        THEN 0
        ELSE 1
      END
    ),
    0
  ),
  (
    SELECT
      COUNT(*)
    FROM RECONCILE_WANTED
  ),
  (
    SELECT
      COUNT(*)
    FROM RECONCILE_LAST
  ),
  (
    SELECT
      COALESCE(SUM(CASE WHEN known THEN 1 ELSE 0 END), 0)
    FROM RECONCILE_LAST
  ),
  COUNT(*)
FROM RECONCILE_WANTED AS w
FULL OUTER JOIN RECONCILE_LAST AS l
  ON w.cid = l.customer_id
LEFT JOIN RECONCILE_LISTS AS s
  ON s.segments = l.segments
