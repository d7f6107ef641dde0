-- params: ["^[a-z.]+[0-9]*@example\\.com\\z", "matches"]
SELECT
  f.customer_id,
  g.segment_id
FROM (
  SELECT
    CAST(`customer_id` AS STRING) AS customer_id,
    COALESCE(`email` RLIKE ?, FALSE) AS s0
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
