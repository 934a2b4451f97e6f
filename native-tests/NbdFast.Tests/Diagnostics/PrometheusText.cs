using System.Globalization;
using System.Text;

namespace NbdFast.Tests.Diagnostics;

/// <summary>One sample of a Prometheus text exposition: <c>name{label="value",...} number</c>.</summary>
public sealed record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"{Name}{{{string.Join(",", Labels.Select(l => $"{l.Key}=\"{l.Value}\""))}}} {Value.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>Reads the Prometheus text format (version 0.0.4) as scraped from an endpoint, for assertions.</summary>
public sealed class PrometheusText
{
    private PrometheusText(string text, IReadOnlyList<PrometheusSample> samples, IReadOnlyDictionary<string, string> types)
    {
        Text = text;
        Samples = samples;
        Types = types;
    }

    /// <summary>The scraped text, for failure messages.</summary>
    public string Text { get; }

    public IReadOnlyList<PrometheusSample> Samples { get; }

    /// <summary>Metric family name to its <c># TYPE</c> (counter, gauge, histogram, ...).</summary>
    public IReadOnlyDictionary<string, string> Types { get; }

    /// <summary>
    /// The value of the one sample called <paramref name="name"/> whose labels include all of
    /// <paramref name="labels"/> (pairs of name and value); 0 when there is none, as Prometheus reads an
    /// absent counter. Fails when several samples match.
    /// </summary>
    public double Value(string name, params (string Label, string Value)[] labels)
    {
        PrometheusSample[] matches = [.. Samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Label, out string? v) && v == l.Value))];
        Assert.True(matches.Length <= 1, $"{matches.Length} samples match {name} {string.Join(",", labels)}:{Environment.NewLine}{string.Join(Environment.NewLine, matches.AsEnumerable())}");
        return matches.Length == 0 ? 0 : matches[0].Value;
    }

    /// <summary>Every sample whose labels include <paramref name="label"/> = <paramref name="value"/>.</summary>
    public IEnumerable<PrometheusSample> WithLabel(string label, string value) =>
        Samples.Where(s => s.Labels.TryGetValue(label, out string? v) && v == value);

    /// <summary>GETs <paramref name="url"/> and parses the answer; fails unless it is 200 with the Prometheus text content type.</summary>
    public static async Task<PrometheusText> ScrapeAsync(string url)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        using HttpResponseMessage response = await http.GetAsync(url);
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"GET {url}: {(int)response.StatusCode}{Environment.NewLine}{body}");
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        return Parse(body);
    }

    public static PrometheusText Parse(string text)
    {
        var samples = new List<PrometheusSample>();
        var types = new Dictionary<string, string>();
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                string[] parts = line.Split(' ');
                types[parts[2]] = parts[3];
                continue;
            }
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }
            samples.Add(ParseSample(line));
        }
        return new PrometheusText(text, samples, types);
    }

    private static PrometheusSample ParseSample(string line)
    {
        int position = 0;
        while (position < line.Length && line[position] is not ('{' or ' '))
        {
            position++;
        }
        string name = line[..position];
        var labels = new Dictionary<string, string>();
        if (position < line.Length && line[position] == '{')
        {
            position++;
            while (line[position] != '}')
            {
                int equals = line.IndexOf('=', position);
                string label = line[position..equals];
                position = equals + 2; // past ="
                var value = new StringBuilder();
                while (line[position] != '"')
                {
                    if (line[position] == '\\')
                    {
                        position++;
                        value.Append(line[position] == 'n' ? '\n' : line[position]);
                    }
                    else
                    {
                        value.Append(line[position]);
                    }
                    position++;
                }
                labels[label] = value.ToString();
                position++; // past the closing quote
                if (line[position] == ',')
                {
                    position++;
                }
            }
            position++;
        }
        // The value, then an optional timestamp.
        string[] rest = line[position..].Trim().Split(' ');
        double number = rest[0] switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            "NaN" => double.NaN,
            _ => double.Parse(rest[0], NumberStyles.Float, CultureInfo.InvariantCulture),
        };
        return new PrometheusSample(name, labels, number);
    }
}
