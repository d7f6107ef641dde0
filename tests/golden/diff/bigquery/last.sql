-- params: []
CREATE OR REPLACE TEMPORARY TABLE RECONCILE_LAST AS
SELECT
  customer_id,
  known,
  segments
FROM `RECONCILER`.`RECONCILE_SNAPSHOT_EPSILON_1A2B3C4D__4242_1700000000000000000` AS f
WHERE
  NOT EXISTS(
    SELECT
      1
    FROM RECONCILE_OVERLAY AS o
    WHERE
      o.customer_id = f.customer_id
  )
UNION ALL
SELECT
  customer_id,
  known,
  segments
FROM RECONCILE_OVERLAY
WHERE
  known OR segments <> ''
