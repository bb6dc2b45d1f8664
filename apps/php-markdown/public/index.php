<?php
// A PHP app of one's own: a front controller in public/ (nginx serves the
// rest of public/ itself), a library from vendor/, the database from the
// environment foobar gives php-fpm.
require __DIR__ . '/../vendor/autoload.php';

function db(): PDO
{
    $host = getenv('DB_HOST');
    $dsn = $host
        ? sprintf('mysql:host=%s;port=%d;dbname=%s', $host, (int) (getenv('DB_PORT') ?: 3306), getenv('DB_NAME'))
        : sprintf('mysql:unix_socket=%s;dbname=%s', getenv('DB_SOCKET') ?: '/run/mysqld/mysqld.sock', getenv('DB_NAME'));
    return new PDO($dsn, getenv('DB_USER'), getenv('DB_PASSWORD'), [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
}

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
if ($path === '/healthz') {
    header('Content-Type: application/json');
    echo json_encode(['status' => 'ok', 'site' => getenv('SITE_NAME')]), "\n";
} elseif ($path === '/') {
    $db = db();
    $db->exec('CREATE TABLE IF NOT EXISTS page_views (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME NOT NULL)');
    $db->exec('INSERT INTO page_views (at) VALUES (NOW())');
    $views = (int) $db->query('SELECT COUNT(*) FROM page_views')->fetchColumn();
    $html = (new Parsedown())->text(file_get_contents(__DIR__ . '/../pages/home.md'));
    printf("<!doctype html><title>%s</title>%s<p>%d views</p>\n", htmlspecialchars(getenv('SITE_NAME')), $html, $views);
} else {
    http_response_code(404);
    echo "not found\n";
}
