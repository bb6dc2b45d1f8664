<?php
// The vendored libraries' autoloader (what composer's vendor/autoload.php
// does for this one class): shipped with the code base, used as is.
spl_autoload_register(function (string $class): void {
    $map = ['Parsedown' => __DIR__ . '/erusev/parsedown/Parsedown.php'];
    if (isset($map[$class])) {
        require $map[$class];
    }
});
