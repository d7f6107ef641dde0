-- params: [1, 2, 3, "not_in"]
SELECT
  f.customer_id,
  g.segment_id
FROM (
  SELECT
    CAST(`customer_id` AS STRING) AS customer_id,
    COALESCE(NOT `spend` IN (?, ?, ?), FALSE) AS s0
  FROM `shop`.`customers`
  WHERE
    NOT `customer_id` IS NULL
) AS f
CROSS JOIN (
  SELECT
    0 AS i,
    CAST(? AS STRING) AS segment_id
) AS g
WHERE
  CASE g.i WHEN 0 THEN f.s0 ELSE FALSE END
