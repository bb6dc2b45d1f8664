<?php
// The foobar sample application for PHP-FPM. nginx serves static/ itself
// and sends every other request here.
//   /healthz  answers without the database: proves nginx -> php-fpm.
//   /visits   counts a visit in MySQL and returns the count: proves
//             nginx -> php-fpm -> database.

function reply(int $status, string $json): void
{
    http_response_code($status);
    header('Content-Type: application/json');
    echo $json, "\n";
}

function count_visit(): int
{
    mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
    // DB_HOST when the database is on another server, its socket otherwise.
    $host = getenv('DB_HOST');
    $db = $host
        ? new mysqli($host, getenv('DB_USER'), getenv('DB_PASSWORD'), getenv('DB_NAME'), (int) (getenv('DB_PORT') ?: 3306))
        : new mysqli('localhost', getenv('DB_USER'), getenv('DB_PASSWORD'), getenv('DB_NAME'), 0, getenv('DB_SOCKET') ?: '/run/mysqld/mysqld.sock');
    $db->query('CREATE TABLE IF NOT EXISTS visits (id INT PRIMARY KEY, count BIGINT NOT NULL)');
    $db->query('INSERT INTO visits (id, count) VALUES (1, 1) ON DUPLICATE KEY UPDATE count = count + 1');
    $count = (int) $db->query('SELECT count FROM visits WHERE id = 1')->fetch_row()[0];
    $db->close();
    return $count;
}

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
if ($path === '/healthz') {
    reply(200, '{"status": "ok"}');
} elseif ($path === '/visits') {
    try {
        $count = count_visit();
        reply(200, sprintf('{"visits": %d, "database": %s}', $count, json_encode(getenv('DB_NAME'))));
    } catch (Throwable $e) {
        // The check names the database hop.
        reply(503, sprintf('{"error": "database unavailable", "kind": %s}', json_encode(get_class($e))));
    }
} else {
    reply(404, sprintf('{"error": "not found", "path": %s}', json_encode($path)));
}
