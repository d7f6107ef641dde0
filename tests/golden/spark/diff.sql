-- desired
-- params: ["high-spend", 0.4, "north", "example-mail", "^[a-z.]+[0-9]*@example\\.com\\z", "north", "south"]
CACHE TABLE `reconcile_desired` AS
SELECT DISTINCT
  customer_id,
  segment_id
FROM (
  SELECT
    CAST(`customer_id` AS STRING) AS customer_id,
    CAST(? AS STRING) AS segment_id
  FROM `shop`.`customers`
  WHERE
    NOT `customer_id` IS NULL
    AND COALESCE(`share` >= ?, FALSE)
    AND NOT (
      NOT COALESCE(`region` = ?, FALSE)
    )
  UNION ALL
  SELECT
    CAST(`customer_id` AS STRING) AS customer_id,
    CAST(? AS STRING) AS segment_id
  FROM `shop`.`customers`
  WHERE
    NOT `customer_id` IS NULL
    AND (
      COALESCE(`email` RLIKE ?, FALSE) AND COALESCE(`region` IN (?, ?), FALSE)
    )
) AS m;
-- counts
-- params: []
SELECT
  (
    SELECT
      COUNT(*)
    FROM `reconcile_desired`
  ) AS desired,
  (
    SELECT
      COUNT(*)
    FROM (
      SELECT DISTINCT
        customer_id,
        segment_id
      FROM `shop`.`snapshot_epsilon`
    )
  ) AS snapshot,
  (
    SELECT
      COUNT(*)
    FROM `reconcile_desired` AS d
    INNER JOIN (
      SELECT DISTINCT
        customer_id,
        segment_id
      FROM `shop`.`snapshot_epsilon`
    ) AS s
      ON d.customer_id = s.customer_id AND d.segment_id = s.segment_id
  ) AS kept,
  (
    SELECT
      COUNT(*)
    FROM (
      SELECT
        l.customer_id,
        l.segment_id,
        'add' AS op
      FROM `reconcile_desired` AS l
      WHERE
        NOT EXISTS(
          SELECT
            1
          FROM (
            SELECT DISTINCT
              customer_id,
              segment_id
            FROM `shop`.`snapshot_epsilon`
          ) AS r
          WHERE
            r.customer_id = l.customer_id AND r.segment_id = l.segment_id
        )
    ) AS a
  ) AS adds,
  (
    SELECT
      COUNT(*)
    FROM (
      SELECT
        l.customer_id,
        l.segment_id,
        'remove' AS op
      FROM (
        SELECT DISTINCT
          customer_id,
          segment_id
        FROM `shop`.`snapshot_epsilon`
      ) AS l
      WHERE
        NOT EXISTS(
          SELECT
            1
          FROM `reconcile_desired` AS r
          WHERE
            r.customer_id = l.customer_id AND r.segment_id = l.segment_id
        )
    ) AS x
  ) AS removes;
-- adds
-- params: []
SELECT
  l.customer_id,
  l.segment_id,
  'add' AS op
FROM `reconcile_desired` AS l
WHERE
  NOT EXISTS(
    SELECT
      1
    FROM (
      SELECT DISTINCT
        customer_id,
        segment_id
      FROM `shop`.`snapshot_epsilon`
    ) AS r
    WHERE
      r.customer_id = l.customer_id AND r.segment_id = l.segment_id
  );
-- removes
-- params: []
SELECT
  l.customer_id,
  l.segment_id,
  'remove' AS op
FROM (
  SELECT DISTINCT
    customer_id,
    segment_id
  FROM `shop`.`snapshot_epsilon`
) AS l
WHERE
  NOT EXISTS(
    SELECT
      1
    FROM `reconcile_desired` AS r
    WHERE
      r.customer_id = l.customer_id AND r.segment_id = l.segment_id
  );
