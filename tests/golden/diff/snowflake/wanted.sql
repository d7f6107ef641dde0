-- params: [100, "north", "@example\\.com$", "0", "1", "2", "0", "high-spend", 0, "1", "north-mail", 0, "2", "north-mail", 1]
CREATE OR REPLACE TEMPORARY TABLE RECONCILE_WANTED AS
SELECT
  cid,
  LISTAGG(seg, CHR(  31)) WITHIN GROUP (ORDER BY
    seg) AS want
FROM (
  SELECT
    cid,
    seg
  FROM (
    (
      SELECT
        m.customer_id AS cid,
        r.seg,
        r.x
      FROM (
        SELECT
          f.customer_id,
          g.segment_id
        FROM (
          SELECT
            CAST("customer_id" AS VARCHAR) AS customer_id,
            COALESCE("spend" >= ?, FALSE) AS s0,
            (
              COALESCE("region" = ?, FALSE) AND COALESCE(REGEXP_INSTR("email", ?) > 0, FALSE)
            ) AS s1,
            (
              NOT (
                NOT "email" IS NULL
              )
            ) AS s2
          FROM "crm"."shop"."customers"
          WHERE
            NOT "customer_id" IS NULL
        ) AS f
        CROSS JOIN (
          SELECT
            0 AS i,
            CAST(? AS VARCHAR) AS segment_id
          UNION ALL
          SELECT
            1 AS i,
            CAST(? AS VARCHAR) AS segment_id
          UNION ALL
          SELECT
            2 AS i,
            CAST(? AS VARCHAR) AS segment_id
        ) AS g
        WHERE
          CASE g.i WHEN 0 THEN f.s0 WHEN 1 THEN f.s1 WHEN 2 THEN f.s2 ELSE FALSE END
      ) AS m
      JOIN (
        SELECT
          CAST(? AS VARCHAR) AS k,
          CAST(? AS VARCHAR) AS seg,
          CAST(? AS INT) AS x
        UNION ALL
        SELECT
          CAST(? AS VARCHAR) AS k,
          CAST(? AS VARCHAR) AS seg,
          CAST(? AS INT) AS x
        UNION ALL
        SELECT
          CAST(? AS VARCHAR) AS k,
          CAST(? AS VARCHAR) AS seg,
          CAST(? AS INT) AS x
      ) AS r
        ON m.segment_id = r.k
    )
    UNION ALL
    (
      SELECT
        cid,
        seg,
        x
      FROM RECONCILE_LOCAL
    )
  ) AS c
  GROUP BY
    cid,
    seg
  HAVING
    MAX(x) = 0
) AS p
GROUP BY
  cid
