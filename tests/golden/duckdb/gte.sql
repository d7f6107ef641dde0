-- params: ["gte", 0.4]
SELECT
  CAST("customer_id" AS TEXT) AS customer_id,
  CAST(? AS TEXT) AS segment_id
FROM "shop"."customers"
WHERE
  NOT "customer_id" IS NULL AND COALESCE("share" >= ?, FALSE)
