-- params: ["not_in", 1, 2, 3]
SELECT
  CAST(`customer_id` AS STRING) AS customer_id,
  CAST(? AS STRING) AS segment_id
FROM `shop`.`customers`
WHERE
  NOT `customer_id` IS NULL AND COALESCE(NOT `spend` IN (?, ?, ?), FALSE)
