-- params: ["eq", "north"]
SELECT
  CAST(`customer_id` AS STRING) AS customer_id,
  CAST(? AS STRING) AS segment_id
FROM `shop`.`customers`
WHERE
  NOT `customer_id` IS NULL AND COALESCE(`region` = ?, FALSE)
