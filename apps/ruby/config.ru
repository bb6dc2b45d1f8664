# The foobar sample application for Ruby (Rack, run by puma). nginx serves
# static/ itself and sends every other request here.
#   /healthz  answers without the database: proves nginx -> puma.
#   /visits   counts a visit in MySQL and returns the count: proves
#             nginx -> puma -> database.
require "json"
require "mysql2"

class FoobarApp
  JSON_TYPE = { "content-type" => "application/json" }.freeze

  def call(env)
    case env["PATH_INFO"]
    when "/healthz"
      [200, JSON_TYPE, ["{\"status\": \"ok\"}\n"]]
    when "/visits"
      begin
        count = count_visit
        [200, JSON_TYPE, ["{\"visits\": #{count}, \"database\": #{ENV['DB_NAME'].to_json}}\n"]]
      rescue StandardError => e
        # The check names the database hop.
        [503, JSON_TYPE, ["{\"error\": \"database unavailable\", \"kind\": #{e.class.name.to_json}}\n"]]
      end
    else
      [404, JSON_TYPE, ["{\"error\": \"not found\", \"path\": #{env['PATH_INFO'].to_json}}\n"]]
    end
  end

  private

  def count_visit
    # DB_HOST when the database is on another server, its socket otherwise.
    where = if ENV["DB_HOST"].to_s.empty?
      { socket: ENV.fetch("DB_SOCKET", "/run/mysqld/mysqld.sock") }
    else
      { host: ENV["DB_HOST"], port: Integer(ENV.fetch("DB_PORT", "3306")) }
    end
    db = Mysql2::Client.new(
      **where,
      username: ENV["DB_USER"],
      password: ENV["DB_PASSWORD"],
      database: ENV["DB_NAME"],
      connect_timeout: 3
    )
    db.query("CREATE TABLE IF NOT EXISTS visits (id INT PRIMARY KEY, count BIGINT NOT NULL)")
    db.query("INSERT INTO visits (id, count) VALUES (1, 1) ON DUPLICATE KEY UPDATE count = count + 1")
    db.query("SELECT count FROM visits WHERE id = 1").first["count"]
  ensure
    db&.close
  end
end

run FoobarApp.new
