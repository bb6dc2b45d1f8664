# A Sinatra app (Debian's ruby-sinatra, installed through app.packages)
# under puma; the database settings come from foobar's app.env.
require 'json'
require 'mysql2'
require 'sinatra/base'

class Guestbook < Sinatra::Base
  set :host_authorization, { permitted_hosts: [] }

  def db
    opts = { username: ENV['DB_USER'], password: ENV['DB_PASSWORD'], database: ENV['DB_NAME'] }
    if ENV['DB_HOST']
      opts.merge!(host: ENV['DB_HOST'], port: Integer(ENV.fetch('DB_PORT', '3306')))
    else
      opts[:socket] = ENV.fetch('DB_SOCKET', '/run/mysqld/mysqld.sock')
    end
    Mysql2::Client.new(**opts)
  end

  get '/healthz' do
    content_type :json
    # SITE_NAME (app.env), as the app reads it.
    { status: 'ok', site: ENV['SITE_NAME'] }.to_json
  end

  get '/' do
    client = db
    client.query('CREATE TABLE IF NOT EXISTS signatures (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME NOT NULL)')
    client.query('INSERT INTO signatures (at) VALUES (NOW())')
    n = client.query('SELECT COUNT(*) AS n FROM signatures').first['n']
    client.close
    "<h1>Sinatra guestbook</h1><p>#{n} signatures</p>"
  end
end
