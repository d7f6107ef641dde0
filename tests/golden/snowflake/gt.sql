-- params: ["2024-05-01T10:00:00", "gt"]
SELECT
  f.customer_id,
  g.segment_id
FROM (
  SELECT
    CAST("customer_id" AS VARCHAR) AS customer_id,
    COALESCE("last_seen" > CAST(? AS TIMESTAMP), FALSE) AS s0
  FROM "shop"."customers"
  WHERE
    NOT "customer_id" IS NULL
) AS f
CROSS JOIN (
  SELECT
    0 AS i,
    CAST(? AS VARCHAR) AS segment_id
) AS g
WHERE
  CASE g.i WHEN 0 THEN f.s0 ELSE FALSE END
