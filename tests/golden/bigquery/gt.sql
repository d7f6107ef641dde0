-- params: ["gt", "2024-05-01T10:00:00"]
SELECT
  CAST(`customer_id` AS STRING) AS customer_id,
  CAST(? AS STRING) AS segment_id
FROM `shop`.`customers`
WHERE
  NOT `customer_id` IS NULL AND COALESCE(`last_seen` > CAST(? AS TIMESTAMP), FALSE)
