using Microsoft.Extensions.Logging;

namespace NbdFast.Cli.Logging;

/// <summary>
/// Writes each log message as one <c>nbdfast: …</c> line on standard error, the form systemd's journal and
/// shell users expect; whole lines only, so messages from several connections never interleave.
/// </summary>
/// <remarks>
/// A tiny provider instead of the console logger: no options binding or background queue, nothing for the
/// AOT trimmer to worry about, and the line format stays what scripts already parse.
/// </remarks>
internal sealed class StderrLoggerProvider : ILoggerProvider
{
    private readonly Lock _lock = new();
    private readonly TextWriter _output;

    public StderrLoggerProvider(TextWriter? output = null) => _output = output ?? Console.Error;

    public ILogger CreateLogger(string categoryName) => new StderrLogger(this);

    public void Dispose()
    {
    }

    private void Write(string line)
    {
        lock (_lock)
        {
            _output.WriteLine(line);
            _output.Flush();
        }
    }

    private sealed class StderrLogger(StderrLoggerProvider provider) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            string message = formatter(state, exception);
            provider.Write(exception is null || logLevel < LogLevel.Error
                ? $"nbdfast: {message}"
                : $"nbdfast: {message}: {exception.GetType().Name}: {exception.Message}");
        }
    }
}
